# End to end (tests/e2e/): the install flow with a real netboot client.
# rackboot-controller, rackboot-agent and radvd in network namespaces, QEMU
# (TCG) as the host with each firmware, a Debian kernel + busybox initrd as
# the installer (deploy/lab/lib.sh builds it; the kernel is downloaded once
# per machine into /var/cache/rackboot-e2e). Each variant takes about
# 1-2 minutes under TCG; they skip (77) without root, ip netns, /dev/net/tun,
# QEMU or the firmware. Label e2e: `ctest -L e2e`.
#
# COST: the VM tests hold one lock (rackboot-qemu), so they run one after
# another, ~18 min in all under CI's sanitizers: started first (highest
# cost first), that chain runs on one core while everything else shares
# the other, instead of being left for last with one core idle (a fresh
# clone has no CTestCostData.txt, so ctest orders by COST alone). Each
# cost is about the test's seconds in CI.
if(TARGET rackboot AND TARGET rackboot-controller AND TARGET rackboot-agent
   AND TARGET rackboot-pki)
  set(_rb_bins $<TARGET_FILE:rackboot-agent> $<TARGET_FILE:rackboot-controller>
               $<TARGET_FILE:rackboot> $<TARGET_FILE:rackboot-pki>)
  foreach(fw bios uefi uefi-pxe uki-pxe uki-http)
    add_test(NAME e2e.${fw}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/e2e.sh ${fw} ${_rb_bins})
    # Two boots under TCG: ~35-55 s to installed, ~3-8 s until the second
    # boot's Solicit is ignored; the script bounds each boot itself.
    set_tests_properties(e2e.${fw} PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 COST 80
                         LABELS e2e RESOURCE_LOCK rackboot-qemu)
  endforeach()

  # No human in the loop: the host has a BMC (deploy/lab/bmc.sh: ipmi_sim,
  # whose chassis powers QEMU), is off at the start, and `install --power
  # cycle` alone brings it up (one-time PXE with the EFI flag, then the
  # cycle); boot 2 is `rackboot power on`; `power status` agrees with
  # ipmitool. UEFI, where the EFI flag matters.
  add_test(NAME e2e.uefi-bmc
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/e2e.sh uefi ${_rb_bins} bmc)
  set_tests_properties(e2e.uefi-bmc PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 COST 65
                       LABELS e2e RESOURCE_LOCK rackboot-qemu)
  # A rack's redundant pair of agents (tests/e2e/agent_pair.sh): keepalived
  # moves the rack's service address between them; the primary is SIGKILLed
  # after iPXE's last fetch and the host's installer finishes through the
  # secondary; every phase counts once at the controller. One boot under
  # TCG (bios): COST like one e2e.${fw} variant. Skips (77) without
  # keepalived too.
  add_test(NAME e2e.agent_pair
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/agent_pair.sh ${_rb_bins})
  set_tests_properties(e2e.agent_pair PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 COST 80
                       LABELS e2e RESOURCE_LOCK rackboot-qemu)

  # Image deploys (tests/e2e/image_deploy.sh): the real controller and agent,
  # the deploy ramdisk and a real Debian 12 image written to a blank disk,
  # booted from it, confirmed by its own phone_home, logged into over SSH.
  # image_mismatch: the ramdisk refuses an image whose hash does not match,
  # the install fails with the reason.
  # The ramdisk and the image are built first, once, by e2e.image_builds
  # (cached by content under /var/cache/rackboot; a first Debian build takes
  # ~5 min): outside the VM lock, and started first (COST), so that build
  # overlaps the other tests rather than holding up every VM test.
  # RESOURCE_LOCK rackboot-qemu as the other VM tests: each QEMU (TCG) takes
  # a core for minutes, and CI has two.
  add_test(NAME e2e.image_builds COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/image_builds.sh)
  set_tests_properties(e2e.image_builds PROPERTIES TIMEOUT 1800 SKIP_RETURN_CODE 77 COST 10000
                       LABELS e2e FIXTURES_SETUP rackboot_image_builds)
  foreach(fw bios uefi mismatch)
    add_test(NAME e2e.image_${fw}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/image_deploy.sh ${fw} ${_rb_bins})
    set_tests_properties(e2e.image_${fw} PROPERTIES TIMEOUT 2400 SKIP_RETURN_CODE 77 COST 200
                         LABELS e2e RESOURCE_LOCK rackboot-qemu
                         FIXTURES_REQUIRED rackboot_image_builds)
  endforeach()

  # Debian's real installer (tests/e2e/debian_installer.sh): d-i's netboot
  # kernel and initrd (downloaded once per machine), netcfg's static IPv6
  # from the kernel command line, the preseed fetched from the agent, its
  # early_command's progress seen by `rackboot watch`, up to the first
  # installer step that needs the mirror's .udeb files (not served here).
  # ~1.5-3 min under TCG.
  add_test(NAME e2e.debian-installer
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/debian_installer.sh ${_rb_bins})
  set_tests_properties(e2e.debian-installer PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 COST 120
                       LABELS e2e RESOURCE_LOCK rackboot-qemu)

  # The seed's gotcha #1 on real dracut (tests/e2e/dracut_race.sh): Debian's
  # dracut 059 + dracut-network initramfs (built once per machine in an
  # mmdebstrap chroot by e2e.image_builds, cached), the seed's static ip=, the agent
  # off-link behind a router whose advertisement comes after dracut's own
  # (shortened) wait for it: dracut alone fetches too early and fails,
  # "Network is unreachable"; with the agent's overlay the hook waits for the
  # route, says how long, and the kickstart arrives. ~1 min.
  add_test(NAME e2e.dracut-race
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/dracut_race.sh ${_rb_bins})
  set_tests_properties(e2e.dracut-race PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 COST 60
                       LABELS e2e RESOURCE_LOCK rackboot-qemu
                       FIXTURES_REQUIRED rackboot_image_builds)

  # The agent loses the controller mid-install (its uplink link down); the
  # install completes, and after the link returns every event reaches the
  # controller once. No VM: the host is a namespace with dhclient and curl.
  add_test(NAME e2e.uplink_outage
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/uplink_outage.sh ${_rb_bins})
  set_tests_properties(e2e.uplink_outage PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
                       LABELS "e2e;integration")
endif()

# The lab's virtual BMC (deploy/lab/bmc.sh): ipmi_sim powers the lab's QEMU
# host on, off, reset and cycle, and keeps the boot device, driven and judged
# with ipmitool only from the agent's namespace. No rackboot binaries. ~10-40 s
# with SeaBIOS under TCG (each boot's firmware prints within a few seconds);
# `bmc_vm.sh uefi` (~50 s) and `uefi-pxe` (~6 min: OVMF's console line only
# ends when its PXE gives up) by hand. Skips (77) without root, ip netns,
# /dev/net/tun, radvd, QEMU with ipmi-bmc-extern, SeaBIOS's iPXE ROM,
# ipmi_sim or ipmitool.
add_test(NAME integration.bmc_vm
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/bmc_vm.sh bios)
set_tests_properties(integration.bmc_vm PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 COST 10
                     LABELS integration RESOURCE_LOCK rackboot-qemu)
