// An extension type registers size and traverse functions with an engine;
// without them its references are invisible (it is not a GC type).
#include "monitor/heap/extension_registry.h"

#include <Python.h>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// A non-GC extension object that owns a reference and a C buffer.
struct BlobObject {
  PyObject_HEAD PyObject* ref;
  size_t buffer_bytes;
};

void BlobDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  Py_XDECREF(reinterpret_cast<BlobObject*>(self)->ref);
  type->tp_free(self);
  Py_DECREF(type);
}

PyType_Slot kBlobSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(&BlobDealloc)},
    {0, nullptr},
};

PyType_Spec kBlobSpec = {"annex_test.Blob", sizeof(BlobObject), 0,
                         Py_TPFLAGS_DEFAULT, kBlobSlots};

TEST(ExtensionRegistryTest, RegisteredSizeAndTraverseAreUsed) {
  PyObject* type = PyType_FromSpec(&kBlobSpec);
  ASSERT_NE(type, nullptr);
  PyTypeObject* blob_type = reinterpret_cast<PyTypeObject*>(type);
  PyObject* blob = blob_type->tp_alloc(blob_type, 0);
  ASSERT_NE(blob, nullptr);
  ASSERT_TRUE(
      RunTargetCode("ext_hidden = ['only the blob holds me']; ext_hidden_id = "
                    "id(ext_hidden)"));
  PyObject* hidden = EvalTarget("ext_hidden");
  reinterpret_cast<BlobObject*>(blob)->ref = hidden;  // takes the reference
  reinterpret_cast<BlobObject*>(blob)->buffer_bytes = 1000;
  PyObject* main_dict = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyDict_SetItemString(main_dict, "ext_blob", blob);
  Py_DECREF(blob);
  ASSERT_TRUE(RunTargetCode("del ext_hidden"));
  const uintptr_t hidden_addr = reinterpret_cast<uintptr_t>(hidden);

  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> before = engine.Heap();
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->objects.contains(reinterpret_cast<uintptr_t>(blob)));
  EXPECT_FALSE(before->objects.contains(hidden_addr));
  EXPECT_EQ(*engine.SizeOf(blob), sizeof(BlobObject));

  int size_calls = 0;
  ASSERT_TRUE(
      engine.extensions()
          .Register(blob_type,
                    {[&size_calls](PyObject* o) -> uint64_t {
                       ++size_calls;
                       return sizeof(BlobObject) +
                              reinterpret_cast<BlobObject*>(o)->buffer_bytes;
                     },
                     [](PyObject* o, visitproc visit, void* arg) {
                       PyObject* ref = reinterpret_cast<BlobObject*>(o)->ref;
                       if (ref != nullptr) visit(ref, arg);
                     }})
          .ok());
  EXPECT_EQ(
      engine.extensions()
          .Register(blob_type, {nullptr, [](PyObject*, visitproc, void*) {}})
          .code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine.extensions().Register(nullptr, {}).code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<HeapResult> after = engine.Heap();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->objects.contains(hidden_addr));
  EXPECT_EQ(*engine.SizeOf(blob), sizeof(BlobObject) + 1000);
  EXPECT_GT(size_calls, 0);
  // The blob's buffer, the list, and the string only the list holds.
  EXPECT_EQ(after->total_bytes - before->total_bytes,
            1000 + *engine.SizeOf(hidden) +
                *engine.SizeOf(PyList_GET_ITEM(hidden, 0)));

  // A second engine has its own registry.
  HeapEngine other(testing::MainThreadStates());
  EXPECT_EQ(*other.SizeOf(blob), sizeof(BlobObject));
  EXPECT_TRUE(engine.extensions().Unregister(blob_type).ok());
  EXPECT_EQ(engine.extensions().Unregister(blob_type).code(),
            absl::StatusCode::kNotFound);

  ASSERT_TRUE(RunTargetCode("del ext_blob"));
  Py_DECREF(type);
}

}  // namespace
}  // namespace annex::heap
