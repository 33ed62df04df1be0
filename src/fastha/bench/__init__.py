"""fastha.bench"""
