"""fastha.drivers"""
