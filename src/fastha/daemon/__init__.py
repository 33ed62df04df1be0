"""fastha.daemon"""
