# Tests of proto/.
