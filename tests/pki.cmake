# Tests of pki/.
