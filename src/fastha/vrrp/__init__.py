"""fastha.vrrp"""
