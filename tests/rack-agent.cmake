# Tests of rack-agent/.
rackboot_unit_test(test_dhcp6_wire LIBS rb_dhcp6)
rackboot_unit_test(test_dhcp6_server LIBS rb_dhcp6)
rackboot_unit_test(test_dhcp6_bindings LIBS rb_dhcp6)
target_include_directories(test_dhcp6_wire PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_include_directories(test_dhcp6_server PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
rackboot_fuzz_target(fuzz_dhcp6 LIBS rb_dhcp6)

rackboot_unit_test(test_agent_leasefile LIBS rb_dhcp6)
rackboot_unit_test(test_agent_config LIBS rb_agent)
rackboot_unit_test(test_agent_standalone LIBS rb_standalone rb_agent)

# The daemon's command line: --help, --version, --check-config.
add_test(NAME agent.cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/dhcp6_cli.sh
                 $<TARGET_FILE:rackboot-agent> ${CMAKE_SOURCE_DIR}/deploy/examples)
set_tests_properties(agent.cli PROPERTIES TIMEOUT 30)

# Real DHCPv6 clients against the agent in network namespaces. They need root
# and `ip netns`, and skip (exit 77) otherwise. Namespace names carry the
# script's pid, so they may run in parallel.
foreach(t dhclient restart dhcpcd no_intent duid_uuid relay pair)
  add_test(NAME integration.dhcp6_${t}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/dhcp6_${t}.sh
                   $<TARGET_FILE:rackboot-agent>)
  set_tests_properties(integration.dhcp6_${t} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                       LABELS integration)
endforeach()

# OVMF's own PXEv6 in QEMU (TCG) netboots from the agent without a stall:
# firmware DHCPv6 (two clients, one DUID) -> TFTP ipxe.efi -> iPXE DHCPv6 with
# the same address -> HTTP script. ~40-60 s; skips (77) without qemu/OVMF.
add_test(NAME integration.dhcp6_ovmf
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/dhcp6_ovmf.sh
                 $<TARGET_FILE:rackboot-agent>)
set_tests_properties(integration.dhcp6_ovmf PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
                     LABELS integration)

# A deterministic CPU-cost driver of the DHCPv6 path, for callgrind (see its
# header). Built, not a test.
add_executable(dhcp6_cpu ${CMAKE_CURRENT_SOURCE_DIR}/bench/dhcp6_cpu.c)
target_link_libraries(dhcp6_cpu PRIVATE rb_dhcp6)

# The DHCPv6 socket: the batched send queue, the pacer's rules, and (in a
# network namespace of its own, root only) one read and one send per batch.
rackboot_unit_test(test_dhcp6_socket LIBS rb_dhcp6 TIMEOUT 60)
target_include_directories(test_dhcp6_socket PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)

# --check-config refuses what start-up would refuse (interfaces, listen
# addresses, the uplink's certificate, addresses given twice in the hosts
# file) and a missing uplink certificate is fatal at start.
add_test(NAME integration.agent_check_config
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/agent_check_config.sh
                 $<TARGET_FILE:rackboot-agent> $<TARGET_FILE:rackboot-pki>)
set_tests_properties(integration.agent_check_config PROPERTIES TIMEOUT 120)

# Fuzzed: the lease file, the standalone hosts file and agent.conf (each
# written to a private tmpfs directory, see tests/fuzz/fuzz_file.h).
rackboot_fuzz_target(fuzz_leasefile LIBS rb_dhcp6)
rackboot_fuzz_target(fuzz_hostsfile LIBS rb_model)
rackboot_fuzz_target(fuzz_agent_config LIBS rb_agent)

# The BMC power module: target URLs, names, the driver-independent sequence
# and the executor (per-BMC order, the rack's limit, retries, cancellation)
# with a fake driver.
rackboot_unit_test(test_power LIBS rb_power TIMEOUT 120)

# powerctl: a sync's BMCs and commands as a plan, each command run once
# (also across restarts), failures as events, a full queue, the status poll.
rackboot_unit_test(test_powerctl LIBS rb_powerctl TIMEOUT 120)

# rb-power: one request through the executor, for the integration test and
# for trying a BMC by hand (test build only).
add_executable(rb-power ${CMAKE_CURRENT_SOURCE_DIR}/tools/rb_power.c)
target_link_libraries(rb-power PRIVATE rb_power)

# The IPMI driver against OpenIPMI's ipmi_sim as the BMC, in a network
# namespace, checked with ipmitool: status, on/off/cycle, one-time boot device
# with and without EFI, cycle of an off host, wrong password, an unreachable
# and a slow BMC. Needs root, `ip netns`, ipmi_sim and ipmitool (else 77).
add_test(NAME integration.power_ipmi
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/power_ipmi.sh
                 $<TARGET_FILE:rb-power>)
set_tests_properties(integration.power_ipmi PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                     LABELS integration)

# Hands-off power through the whole chain (CLI, controller, agent, IPMI
# driver) against ipmi_sim on the rack's management link, judged with
# ipmitool: status/on, install --power cycle (PXE + EFI flag, then the
# cycle, as the install's events), the power poll in `hosts list`, a wrong
# password, an unreachable and a slow BMC while the agent keeps serving, no
# password in any log or output. ~60 s. Root and `ip netns` (else 77).
if(TARGET rackboot AND TARGET rackboot-controller AND TARGET rackboot-pki)
  add_test(NAME integration.power_agent
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/power_agent.sh
                   $<TARGET_FILE:rackboot-agent> $<TARGET_FILE:rackboot-controller>
                   $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-pki>)
  set_tests_properties(integration.power_agent PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS integration)
endif()
