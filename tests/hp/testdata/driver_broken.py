"""A module that does not load: the driver reports one failing case."""

import unittest


class NeverListed(unittest.TestCase):

    def test_never(self):
        pass


raise ImportError('drv broken module')  # line 12
