# Tests of metrics/: the registry both daemons render at /metrics.
rackboot_unit_test(test_metrics LIBS rb_metrics)
