"""fastha.runtime"""
