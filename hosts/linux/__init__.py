"""Pure parsers of what a Linux host prints: /proc, /sys, diskstats, mdstat, kernel log, disks,
network counters and listen queues, open-file limits, ping, sshd's and web servers' logs."""
