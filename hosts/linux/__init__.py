"""Pure parsers of what a Linux host prints: /proc, /sys, diskstats, mdstat, kernel log, disks."""
