# Tests of rack-agent/tftp/.
