# Tests of rack-agent/.
