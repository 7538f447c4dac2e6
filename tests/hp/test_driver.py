"""The hp test driver's passing path (tests/testing/annex_unittest_main.cc):
a module in the annex with `hp`, annex_test reaching the target, a fresh
namespace and hp per test, unittest's fixtures. Its failure paths are
annex_unittest_driver_test's (testdata/driver_outcomes.py)."""

import sys
import unittest

import annex_test

# Module code runs once per test, in that test's namespace.
_loads = globals().get('_loads', 0) + 1


class DriverTest(unittest.TestCase):
    set_up_class_runs = 0

    @classmethod
    def setUpClass(cls):
        cls.set_up_class_runs += 1

    def setUp(self):
        self.planted = 'drv_%s' % self._testMethodName

    def test_runs_in_the_annex_with_hp(self):
        self.assertEqual(type(hp).__name__, 'Hp')
        self.assertIs(sys.modules.get('annex_test'), annex_test)
        self.assertEqual(__name__, 'test_driver')
        self.assertTrue(__file__.endswith('tests/hp/test_driver.py'))
        self.assertEqual(self.set_up_class_runs, 1)

    def test_each_test_has_a_fresh_namespace_and_hp(self):
        self.assertEqual(_loads, 1)
        self.assertNotIn('drv_leftover', globals())
        globals()['drv_leftover'] = True
        hp.setref()  # the next test's hp has no reference point

    def test_hp_sees_no_reference_point_of_another_test(self):
        annex_test.target_exec('drv_before = [object() for _ in range(3)]')
        self.assertIn(annex_test.target_eval('id(drv_before)'), hp.heap())

    def test_target_exec_and_eval_use_the_targets_main(self):
        annex_test.target_exec(
            'import sys\n'
            '%s = (sys.version_info[:2], [1, 2.5, "s", b"b", None], {3: {4}})'
            % self.planted)
        value = annex_test.target_eval(self.planted)
        self.assertEqual(value,
                         (tuple(sys.version_info[:2]),
                          [1, 2.5, 's', b'b', None], {3: {4}}))
        self.assertEqual(annex_test.target_eval('__name__'), '__main__')
        self.assertNotIn(self.planted, globals())
        annex_test.target_exec('del %s' % self.planted)
        # The target's objects are in the target's heap, and hp sees them.
        annex_test.target_exec('class DrvThing:\n    pass\n'
                               'drv_things = [DrvThing() for _ in range(7)]')
        self.assertEqual(len(hp.heap() & hp.Type('__main__.DrvThing')), 7)
        annex_test.target_exec('del drv_things, DrvThing')

    def test_errors_in_the_target_raise_target_error(self):
        with self.assertRaises(annex_test.TargetError) as cm:
            annex_test.target_exec('def drv_f():\n    1 / 0\ndrv_f()')
        text = str(cm.exception)
        self.assertIn('ZeroDivisionError: division by zero', text)
        self.assertIn('File "<annex_test.target_exec>", line 2, in drv_f',
                      text)
        with self.assertRaises(annex_test.TargetError) as cm:
            annex_test.target_eval('object()')
        self.assertIn('is not a literal', str(cm.exception))
        with self.assertRaises(annex_test.TargetError) as cm:
            annex_test.target_eval('drv_no_such_name')
        self.assertIn("NameError: name 'drv_no_such_name' is not defined",
                      str(cm.exception))
        with self.assertRaises(TypeError):
            annex_test.target_exec(3)

    def test_monitor_option(self):
        self.assertEqual(annex_test.monitor_option('question_pause_limit'),
                         5.0)
        self.assertIs(annex_test.monitor_option('console'), False)
        with self.assertRaises(KeyError):
            annex_test.monitor_option('nope')

    def test_err_and_err_type_name_what_a_call_raises(self):
        self.assertEqual(annex_test.err(lambda: int('x')),
                         "ValueError: invalid literal for int() with base "
                         "10: 'x'")
        self.assertEqual(annex_test.err_type(lambda: {}['k']), 'KeyError')
        self.assertEqual(annex_test.err(lambda: None), 'no error')
        self.assertEqual(annex_test.err_type(lambda: None), 'no error')

    def test_the_modules_directory_is_on_sys_path(self):
        import hp_helpers  # tests/hp/hp_helpers.py, beside this module
        annex_test.target_exec('class DrvRowKind:\n    pass\n'
                               'drv_row = [DrvRowKind() for _ in range(4)]')
        self.assertEqual(hp_helpers.row(hp, '__main__.DrvRowKind').count, 4)
        with self.assertRaises(AssertionError):
            hp_helpers.row(hp, '__main__.DrvNoSuchKind')
        annex_test.target_exec('del drv_row, DrvRowKind')

    @unittest.expectedFailure
    def test_expected_failure_passes(self):
        self.assertEqual(1, 2)


if __name__ == '__main__':
    unittest.main()
