# The fault suite (tests/faults/, label "faults"): real rackboot-controller
# and rackboot-agent over real mutual TLS in network namespaces of each
# case's own, hosts simulated by tests/faults/hostsim.py (DHCPv6 with their
# DUID-LL, HTTP from their reserved addresses: script, kernel, initrds,
# kickstart, stage2, progress POSTs). Each case injects one fault and checks
# with tests/faults/check.py that the controller's store converges and holds
# every event the agent journaled exactly once (per host and phase, against
# what the hosts did). Root and `ip netns` are needed; otherwise each case
# skips (77). `ctest -L faults`.
#
# No RESOURCE_LOCK: every case has its own namespaces (named after the case
# and its pid), temporary directory, ports inside them, and disk_full its own
# mount namespace, so they run side by side under ctest -j. TIMEOUTs leave
# room for ctest -j2 on two busy cores (each case takes 5-35 s alone).
if(TARGET rackboot AND TARGET rackboot-controller AND TARGET rackboot-agent
   AND TARGET rackboot-pki)
  set(_rb_fault_bins $<TARGET_FILE:rackboot-agent> $<TARGET_FILE:rackboot-controller>
                     $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-pki>)
  # case               timeout (s)
  set(_rb_faults
      agent_kill       300  # 1. SIGKILL of the agent in a 30-host boot storm
      controller_kill  300  # 2. SIGKILL of the controller mid-dispatch and mid-ingest
      partition        300  # 3. uplink down for longer than the install
      disk_full        240  # 4. the agent's cache and state_dir full (tmpfs)
      cache_corrupt    180  # 5. a cached object corrupted on disk
      cert_rotation    300  # 6. agent and controller certificates rotated
      revoked_agent    240  # 7. a connected agent revoked (CRL + SIGHUP)
  )
  while(_rb_faults)
    list(POP_FRONT _rb_faults _name _timeout)
    add_test(NAME faults.${_name}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/faults/${_name}.sh ${_rb_fault_bins})
    set_tests_properties(faults.${_name} PROPERTIES TIMEOUT ${_timeout} SKIP_RETURN_CODE 77
                         LABELS faults)
  endwhile()
endif()
