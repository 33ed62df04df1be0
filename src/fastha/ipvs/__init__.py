"""fastha.ipvs"""
