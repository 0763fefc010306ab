# The Debian packages (deploy/debian/): built from a clean copy with
# deploy/debian/build.sh, checked by lintian, installed with their
# dependencies into a fresh minbase chroot of the machine's mirror
# (mmdebstrap), upgraded to a version-bumped build, purged
# (tests/package/debian.sh). It compiles the project once (46-150 s on two
# shared cores; 94-227 s in all, 287 s on a first run, which bootstraps);
# the chroot tarball and the downloaded dependencies are kept in the build
# tree, so later runs only extract and install. COST: started early,
# so its compile overlaps the other tests instead of ending the run. Needs
# root, else skips (77). Run it alone with `ctest -L package`.
add_test(NAME package.debian
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package/debian.sh ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/package-deb)
set_tests_properties(package.debian PROPERTIES TIMEOUT 1500 SKIP_RETURN_CODE 77
                     LABELS package COST 5000)

# The bash completion the rackboot package installs, driven through
# bash-completion's own _init_completion: what TAB offers at a few points.
add_test(NAME package.bash_completion
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package/completion.sh
                 ${PROJECT_SOURCE_DIR}/deploy/bash-completion/rackboot)
set_tests_properties(package.bash_completion PROPERTIES TIMEOUT 30 LABELS package)
