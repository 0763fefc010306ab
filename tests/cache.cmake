# Tests of rack-agent/cache/.
