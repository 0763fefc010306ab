# Tests of controller/.
