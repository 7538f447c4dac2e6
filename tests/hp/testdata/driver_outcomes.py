"""Outcomes the driver must report (annex_unittest_driver_test): only
test_passes may pass."""

import unittest

import annex_test


class Outcomes(unittest.TestCase):

    def test_passes(self):
        self.assertTrue(hp)

    def test_fails(self):
        self.assertEqual(len('abc'), 4)  # line 15

    def test_errors(self):
        raise RuntimeError('drv boom')  # line 18

    def test_skips(self):
        self.skipTest('drv not here')

    def test_target_raises(self):
        annex_test.target_exec('drv_missing_name')  # line 24

    def test_reports_pass_then_fails(self):
        annex_test._report('pass', '')
        self.fail('drv after a pass report')  # line 28

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_prints_then_fails(self):
        print('drv printed this')
        self.fail('drv printed and failed')


class FailingSetUp(unittest.TestCase):

    def setUp(self):
        raise ValueError('drv setUp')  # line 42

    def test_never_runs(self):
        pass


class SubTests(unittest.TestCase):

    def test_one_subtest_fails(self):
        for name in ('small', 'big'):
            with self.subTest(name=name):
                self.assertNotEqual(name, 'big')
