okb±
®
el9i
vmlinuz5https://mirror.example.net/el9/images/pxeboot/vmlinuz" ßאבגדהוזחטיךכלםמןנסעףפץצקרשתûü‎‏(ְ÷™o

initrd.img8https://mirror.example.net/el9/images/pxeboot/initrd.img" ¾¿ְֱֲֳִֵֶַָֹÊֻּֽ־ֿ׀ׁׂ׃װױײ׳״ÙÚÛÜÝ(€ן¹4t
squashfs.img:https://mirror.example.net/el9/images/pxeboot/squashfs.img" ]^_`abcdefghijklmnopqrstuvwxyz{|(€¼‎/console=ttyS0,115200n8 inst.text ipv6.disable=0* ÙÚÛÜÝÞßאבגדהוזחטיךכלםמןנסעףפץצקר0@