"""The VRRP child: its runner, its instances and their parts, split by job."""
