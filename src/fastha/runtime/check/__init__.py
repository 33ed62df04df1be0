"""The checker child: probes scheduled, health kept, IPVS reconciled, notifies sent."""
