#!/bin/sh
# tests/tools/cloud_init_unpack.sh DIR: Debian's cloud-init and the Python
# modules it imports, unpacked into DIR with dpkg-deb -x (apt-get download:
# no install, no maintainer scripts, no systemd units enabled, nothing that
# touches this machine's network). Then
#   cmake -DRACKBOOT_CLOUDINIT_PATH=DIR/usr/lib/python3/dist-packages ...
# makes golden.nocloud_check validate the seeds with cloud-init itself;
# tests/run.sh does both (DIR = build/cloud-init, kept between runs).
set -eu
dir=${1:?usage: cloud_init_unpack.sh DIR}
mkdir -p "$dir/debs"
cd "$dir/debs"
apt-get download cloud-init python3-configobj python3-jinja2 python3-jsonpatch \
    python3-json-pointer python3-jsonschema python3-netifaces python3-requests \
    python3-serial python3-markupsafe python3-urllib3 python3-idna python3-certifi \
    python3-charset-normalizer python3-chardet python3-attr python3-pyrsistent \
    python3-yaml python3-oauthlib
for d in ./*.deb; do
    dpkg-deb -x "$d" "$dir"
done
echo "$dir/usr/lib/python3/dist-packages"
