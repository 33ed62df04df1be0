"""fastha.config"""
