# Tests of render/: golden files (tests/golden/render/) for the
# iPXE script, command line and kickstart; the overlay cpio walked here and
# by GNU cpio; the template check; the request-path parsers under replay.
rackboot_unit_test(test_render_template LIBS rb_model)
rackboot_unit_test(test_render_files LIBS rb_render)
target_compile_definitions(test_render_files PRIVATE
                           RENDER_GOLDEN_DIR="${CMAKE_CURRENT_SOURCE_DIR}/golden/render"
                           RENDER_EXAMPLES_DIR="${CMAKE_SOURCE_DIR}/deploy/examples")
rackboot_unit_test(test_render_overlay LIBS rb_render)
# The render context on the wire (render/wire.h), as agents report it.
rackboot_unit_test(test_render_wire LIBS rb_render)
rackboot_fuzz_target(fuzz_render_path LIBS rb_render)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
rackboot_unit_test(test_render_nocloud LIBS rb_render PkgConfig::JANSSON)
target_compile_definitions(test_render_nocloud PRIVATE
                           NOCLOUD_GOLDEN_DIR="${CMAKE_CURRENT_SOURCE_DIR}/golden/nocloud")
# The golden seeds read back as cloud-init reads them. With
# RACKBOOT_CLOUDINIT_PATH (a directory holding cloud-init's Python package,
# e.g. Debian's cloud-init unpacked by tests/tools/cloud_init_unpack.sh, which
# installs nothing) or an importable cloudinit, also through cloud-init's own
# user-data merger, schema and networkd renderer.
set(RACKBOOT_CLOUDINIT_PATH "" CACHE PATH "cloud-init's Python package for nocloud_check.py")
set(_nocloud_check ${CMAKE_CURRENT_SOURCE_DIR}/tools/nocloud_check.py
    ${CMAKE_CURRENT_SOURCE_DIR}/golden/nocloud)
if(RACKBOOT_CLOUDINIT_PATH)
  list(APPEND _nocloud_check --cloud-init-path ${RACKBOOT_CLOUDINIT_PATH} --require-cloud-init)
endif()
add_test(NAME golden.nocloud_check COMMAND python3 ${_nocloud_check})
set_tests_properties(golden.nocloud_check PROPERTIES TIMEOUT 120)

# rack-agent/uki/: the layout and the header parser on vectors, then a UKI
# built from the real systemd-boot-efi stub and read back with objdump -h and
# objcopy -O binary, independent readers of PE (skipped without the stub).
rackboot_unit_test(test_uki LIBS rb_uki)
# The agent's UKIs built on demand: one build per key, hits, errors,
# eviction, cancellation, and what a served image holds (objcopy).
rackboot_unit_test(test_uki_cache LIBS rb_uki rb_files)

# The golden preseed read as Debian's installer reads it: debconf's parser,
# the progress helper decoded from early_command and run by busybox against
# a local server (tools/preseed_check.py).
add_test(NAME golden.preseed_check
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/tools/preseed_check.py
                 ${CMAKE_CURRENT_SOURCE_DIR}/golden/render/preseed-debian-installer.cfg)
set_tests_properties(golden.preseed_check PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77)
