// PyRef (glue/module/py_ref.h): one reference owned, released once, on
// every path: destruction, reset, move assignment; handed over by release.
#include "glue/module/py_ref.h"

#include <Python.h>

#include <utility>

#include "gtest/gtest.h"

namespace annex::glue::module {
namespace {

// All tests: main thread, GIL held, the test's one interpreter current.

// A fresh object only the test refers to.
PyObject* Fresh() { return PyList_New(0); }

TEST(PyRefTest, StealOwnsTheNewReferenceAndReleasesItOnce) {
  PyObject* o = Fresh();
  ASSERT_NE(o, nullptr);
  Py_INCREF(o);  // the test's own reference, to watch the count
  {
    PyRef r = PyRef::Steal(o);
    EXPECT_TRUE(r);
    EXPECT_EQ(r.get(), o);
    EXPECT_EQ(Py_REFCNT(o), 2);
  }
  EXPECT_EQ(Py_REFCNT(o), 1);
  Py_DECREF(o);
}

TEST(PyRefTest, NewRefTakesAReferenceOfItsOwn) {
  PyObject* o = Fresh();
  ASSERT_NE(o, nullptr);
  {
    PyRef r = PyRef::NewRef(o);
    EXPECT_EQ(Py_REFCNT(o), 2);
  }
  EXPECT_EQ(Py_REFCNT(o), 1);
  Py_DECREF(o);
}

TEST(PyRefTest, EmptyIsFalseAndReleasesNothing) {
  PyRef none;
  EXPECT_FALSE(none);
  EXPECT_EQ(none.get(), nullptr);
  PyRef failed = PyRef::Steal(static_cast<PyObject*>(nullptr));
  EXPECT_FALSE(failed);
  EXPECT_FALSE(PyRef::NewRef(static_cast<PyObject*>(nullptr)));
}

TEST(PyRefTest, ReleaseHandsTheReferenceOver) {
  PyObject* o = Fresh();
  ASSERT_NE(o, nullptr);
  PyRef r = PyRef::Steal(o);
  EXPECT_EQ(r.release(), o);
  EXPECT_FALSE(r);
  EXPECT_EQ(Py_REFCNT(o), 1);  // still the caller's
  Py_DECREF(o);
}

TEST(PyRefTest, MoveTransfersAndAssignmentReleasesTheOldReference) {
  PyObject* a = Fresh();
  PyObject* b = Fresh();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Py_INCREF(a);
  Py_INCREF(b);
  {
    PyRef x = PyRef::Steal(a);
    PyRef y = std::move(x);
    EXPECT_FALSE(x);  // NOLINT(bugprone-use-after-move): checked on purpose
    EXPECT_EQ(y.get(), a);
    EXPECT_EQ(Py_REFCNT(a), 2);
    y = PyRef::Steal(b);
    EXPECT_EQ(Py_REFCNT(a), 1);  // released by the assignment
    EXPECT_EQ(y.get(), b);
    y.reset();
    EXPECT_EQ(Py_REFCNT(b), 1);
    EXPECT_FALSE(y);
  }
  Py_DECREF(a);
  Py_DECREF(b);
}

TEST(PyRefTest, TypeViewsATypeObject) {
  PyRef t = PyRef::NewRef(&PyList_Type);
  EXPECT_EQ(t.type(), &PyList_Type);
}

}  // namespace
}  // namespace annex::glue::module
