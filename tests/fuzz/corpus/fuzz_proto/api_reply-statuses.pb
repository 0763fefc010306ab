3 hostsrµ
e
web0a1$6f1c2a3e-0000-4000-8000-000000000000"el9(08%@£–ÎÈ«3HRsquashfs.img 296 MiB of 800 MiB
e
web1a1$6f1c2a3e-0000-4000-8000-000000000001"el9(08%@£–ÎÈ«3HRsquashfs.img 296 MiB of 800 MiB
e
web2a1$6f1c2a3e-0000-4000-8000-000000000002"el9(08%@£–ÎÈ«3HRsquashfs.img 296 MiB of 800 MiB