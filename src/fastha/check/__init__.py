"""fastha.check"""
