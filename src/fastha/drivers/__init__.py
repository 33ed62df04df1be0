"""fastha.drivers"""

from fastha.drivers import pyroute2_lean

pyroute2_lean.install()  # before any driver imports from pyroute2: see pyroute2_lean
