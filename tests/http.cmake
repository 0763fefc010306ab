# Tests of rack-agent/http/.
