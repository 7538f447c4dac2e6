// hp's classifiers as Heapy's equivalence relations beyond the plain ones:
// er.refdby on every classifier, er.sokind(...), kind.alt(cmp) orders
// (subtype, inclusion), the Type.dictof partition, and x.kind / x.er as
// Heapy prints them. Expected values come from the target module below,
// whose referrers are known by construction.

#include <string>

#include "gtest/gtest.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/python_main.h"
#include "tests/testing/python_snippets.h"

namespace annex {
namespace {

using ::annex::testing::DefineTargetModule;
using ::annex::testing::TargetLong;
using ::annex::testing::TargetStr;

// Module `kmods`; in-heap referrers of each object:
//   a:     the module's dict and the list `trio`
//   b:     the module's dict, `trio` and the Holder `h1`
//   c:     the module's dict and `trio`
//   solo:  the module's dict only
//   trio:  the module's dict and the dict `shared` (no owner)
//   owned: an A whose __dict__ (`owned_d`, held too) exists.
// A < B < C by subclassing.
constexpr char kKmods[] = R"py(
class A:
    pass

class B(A):
    pass

class C(B):
    pass

class Holder:
    __slots__ = ('item',)

a = A()
b = B()
c = C()
solo = C()
trio = [a, b, c]
shared = {'x': trio}
h1 = Holder()
h1.item = b
owned = A()
owned.x = 1
owned_d = owned.__dict__
)py";

// I(names): the IdSet of those objects of kmods.
constexpr char kPrelude[] = R"py(
def I(*names):
    return hp.iso(*[ids[n] for n in names])
def rows(x):
    return sorted((p.kind.brief, p.count) for p in x.parts)
def roundtrip(s, er):
    # Heapy's test of an er: each row's kind selects exactly that row.
    p = s.by(er)
    return all((s & p[i].kind) == p[i] for i in range(len(p.parts)))
)py";

class HpKindsTest : public testing::HpFixture {
 protected:
  HpKindsTest() : HpFixture(std::string(testing::kErrPrelude) + kPrelude) {}
  static void SetUpTestSuite() {
    ASSERT_TRUE(DefineTargetModule("kmods", kKmods));
  }
  // Exec with `ids` (name -> id of kmods' objects) defined first.
  std::string Run(const std::string& code) {
    return Exec("ids = " +
                TargetStr("repr({n: id(getattr(__import__('kmods'), n)) for "
                          "n in ('a', 'b', 'c', 'solo', 'trio', 'shared', "
                          "'h1', 'owned', 'owned_d')})") +
                "\n" + code);
  }
};

TEST_F(HpKindsTest, RefdbyClassifiesByTheReferrersKindsUnderAnyClassifier) {
  const long dict_size =
      TargetLong("__import__('sys').getsizeof(__import__('kmods').__dict__)");
  char size_label[32];
  std::snprintf(size_label, sizeof size_label, "%9ld", dict_size);
  EXPECT_EQ(Run("s = I('a', 'b', 'c', 'solo')\n"
                "x = s.by(hp.Type.refdby)\n"
                "print(rows(x))\n"
                "print(repr(x).splitlines()[1][45:], x.er)\n"
                "print(rows(s.byrcs) == rows(s.by(hp.Clodo.refdby)),"
                " hp.Clodo.refdby == hp.Rcs, hp.Rcs)\n"
                "print(I('solo').by(hp.Size.refdby).kind.brief)\n"
                "t = s.by(hp.Type & hp.Type.refdby)\n"
                "print(repr(t).splitlines()[1][45:])\n"
                "print(sorted(r.name for r in t.partition.rows))\n"
                "print(repr(s.by('Type.refdby.refdby')).splitlines()[1][45:],"
                " s.by('(Type&Size).refdby').er)\n"),
            "[('<referred by: dict, kmods.Holder, list>', 1), "
            "('<referred by: dict, list>', 2), ('<referred by: dict>', 1)]\n"
            "Referrers by Type hp.Type.refdby\n"
            "True True hp.Clodo.refdby\n"
            "<referred by: " +
                std::string(size_label) +
                ">\n"
                "Type & {Referrers by Type}\n"
                "['kmods.A & {dict, list}', 'kmods.B & {dict, kmods.Holder, "
                "list}', 'kmods.C & {dict, list}', 'kmods.C & {dict}']\n"
                "Referrers by Referrers by Type (hp.Type & hp.Size).refdby\n");
}

TEST_F(HpKindsTest, EveryClassifiersRowsAndTheirRefdbysSelectThemselves) {
  EXPECT_EQ(Run("s = I('a', 'b', 'c', 'solo', 'trio', 'shared', 'owned',"
                " 'owned_d')\n"
                "ers = [hp.Type, hp.Clodo, hp.Size, hp.Module, hp.Unity,"
                " hp.Id, hp.Via, hp.Rcs, hp.Type.dictof, hp.Type & hp.Size]\n"
                "print([roundtrip(s, er) for er in ers])\n"
                "print([roundtrip(s, er.refdby) for er in ers])\n"
                // Kinds whose repr is Heapy's spelling make the same kind.
                "ks = [p.kind for er in (hp.Type, hp.Clodo, hp.Size,"
                " hp.Type.dictof, hp.Rcs, hp.Type.refdby, hp.Size.refdby,"
                " hp.Type.dictof.refdby) for p in s.by(er).parts]\n"
                "print(len(ks) > 20, all(eval(repr(k)) == k for k in ks))\n"),
            "[True, True, True, True, True, True, True, True, True, True]\n"
            "[True, True, True, True, True, True, True, True, True, True]\n"
            "True True\n");
}

TEST_F(HpKindsTest, SokindMakesRefdbyKindsFromKindsOfTheBase) {
  EXPECT_EQ(
      Run("s = I('a', 'b', 'c', 'solo', 'trio')\n"
          "sk = hp.Type.sokind(list)(dict)\n"
          "print(sk, sk.refdby, sk.refdby.brief)\n"
          "print((s & sk.refdby) == I('a', 'c'),"
          " (s & hp.Type.refdby(sk)) == I('a', 'c'),"
          " (s & hp.Type.refdby(list, 'dict')) == I('a', 'c'))\n"
          "cs = hp.Clodo.sokind(list)(dictof='module')\n"
          "print(repr(cs.refdby), (s & cs.refdby) == I('a', 'c'),"
          " hp.Rcs(cs) == cs.refdby, hp.Clodo.sokind(dictof='module')(list)"
          " == cs)\n"
          "print((s & hp.Clodo.sokind(dictof=())(dictof='module').refdby)"
          " == I('trio'), (s & hp.Size.sokind(3).refdby) == hp.Nothing)\n"
          "print(repr(hp.Type.dictof.sokind(None)('kmods.A').refdby))\n"),
      "hp.Type.sokind('dict')('list') "
      "<referred by: dict, list> <referred by: dict, list>\n"
      "True True True\n"
      "hp.Clodo.sokind(dictof='module')('list').refdby True True True\n"
      "True True\n"
      // Kinds in label order, so one set has one spelling.
      "hp.Type.dictof.sokind('kmods.A')(None).refdby\n");
}

TEST_F(HpKindsTest, AltOrdersTypesBySubtypeAndReferrersByInclusion) {
  EXPECT_EQ(
      Run("s = I('a', 'b', 'c', 'solo')\n"
          "B = hp.Type('kmods.B')\n"
          "for cmp in ('<=', '<', '>=', '>'):\n"
          "    k = B.alt(cmp)\n"
          "    print(cmp, k.brief, sorted(ids_of for ids_of in"
          " [n for n in ('a', 'b', 'c', 'solo') if (I(n) & k) == I(n)]))\n"
          "print(repr(B.alt('<')), hp.Clodo('kmods.B') == B,"
          " (s & hp.Clodo('kmods.B').alt('<=')) == (s & B.alt('<=')))\n"
          "k = hp.Rcs(hp.Clodo.sokind(list)(dictof='module'))\n"
          "for cmp in ('==', '<=', '<', '>=', '>'):\n"
          "    kk = k.alt(cmp)\n"
          "    print(cmp, kk.brief, [n for n in ('a', 'b', 'c', 'solo')"
          " if (I(n) & kk) == I(n)])\n"
          "t = hp.Type.sokind(list)(dict).refdby.alt('<')\n"
          "print(repr(t), [n for n in ('a', 'b', 'c', 'solo')"
          " if (I(n) & t) == I(n)])\n"),
      "<= <subtype of kmods.B> ['b', 'c', 'solo']\n"
      "< <strict subtype of kmods.B> ['c', 'solo']\n"
      ">= <supertype of kmods.B> ['a', 'b']\n"
      "> <strict supertype of kmods.B> ['a']\n"
      "hp.Type('kmods.B').alt('<') True True\n"
      "== <referred by: dict of module, list> ['a', 'c']\n"
      "<= <referred by at most: dict of module, list> ['a', 'c', 'solo']\n"
      "< <referred by less than: dict of module, list> ['solo']\n"
      ">= <referred by at least: dict of module, list> ['a', 'b', 'c']\n"
      "> <referred by more than: dict of module, list> ['b']\n"
      "hp.Type.sokind('dict')('list').refdby.alt('<') ['solo']\n");
}

TEST_F(HpKindsTest, TypeDictofPartitionsDictsByTheirOwnersType) {
  EXPECT_EQ(Run("s = I('owned', 'owned_d', 'shared', 'trio')\n"
                "x = s.by(hp.Type.dictof)\n"
                "print(rows(x), repr(x).splitlines()[1][45:], x.er)\n"
                "print(sorted(repr(p.kind) for p in x.parts))\n"
                "print(rows(s.by('Type.dictof')) == rows(x),"
                " rows(s.by(hp.Clodo.dictof)) == rows(x))\n"
                "print(I('trio').by(hp.Type.dictof.refdby).kind.brief)\n"),
            "[('dict (no owner)', 1), ('dict of kmods.A', 1), ('~dict', 2)] "
            "Dict of Type hp.Type.dictof\n"
            "['hp.Clodo(dictof=())', \"hp.Type('kmods.A').dictof\", "
            "\"~hp.Type('dict')\"]\n"
            "True True\n"
            "<referred by: dict (no owner), dict of module>\n");
}

TEST_F(HpKindsTest, KindsAndErsPrintAsHeapys) {
  EXPECT_EQ(
      Run("for n in ('a', 'owned_d', 'shared'):\n"
          "    k = I(n).kind\n"
          "    print(k, '|', repr(k), eval(repr(k)) == k)\n"
          "k = I('solo').byrcs.kind\n"
          "print(k, '|', repr(k), eval(repr(k)) == k)\n"
          "k = I('a').bysize.kind\n"
          "print(str(k).startswith('<size = '), repr(k)[:8])\n"
          "print(I('a').er, I('a').bytype.er, I('a').by('Size&Type').er,"
          " I('a').by(hp.Size.refdby).er)\n"
          "print(I('a').by(hp.Size.refdby).er == hp.Size.refdby,"
          " hp.Type != hp.Type.refdby, hash(hp.Type) == hash(hp.Type))\n"),
      "kmods.A | hp.Type('kmods.A') True\n"
      "dict of kmods.A | hp.Type('kmods.A').dictof True\n"
      "dict (no owner) | hp.Clodo(dictof=()) True\n"
      "<referred by: dict of module> | "
      "hp.Clodo.sokind(dictof='module').refdby True\n"
      "True hp.Size(\n"
      "hp.Clodo hp.Type (hp.Size & hp.Type) hp.Size.refdby\n"
      "True True True\n");
}

TEST_F(HpKindsTest, BadInputGetsClearErrors) {
  EXPECT_EQ(
      Run("s = I('a')\n"
          "for f in (lambda: hp.Type.sokind('kmods.Nope'),"
          " lambda: hp.Type.refdby(hp.Size(3)),"
          " lambda: hp.Type.refdby(hp.Clodo.sokind(list)),"
          " lambda: hp.Size.refdby('x'),"
          " lambda: (hp.Type & hp.Size).sokind(int),"
          " lambda: hp.Size.dictof,"
          " lambda: s.by('Type.refdbyx'),"
          " lambda: s.by('(Type&Size'),"
          " lambda: hp.Module('kmods').alt('<'),"
          " lambda: hp.Type(int).alt('<').alt('<'),"
          " lambda: hp.Type(int).alt('=<'),"
          " lambda: hp.Type(int).alt(3)):\n"
          "    print(err_type(f))\n"
          "print(err(lambda: hp.Type.refdby(hp.Size(3))))\n"
          "print(err(lambda: hp.Module('kmods').alt('<')).split('. ')[0])\n"),
      "ValueError\nValueError\nValueError\nTypeError\nTypeError\n"
      "AttributeError\nValueError\nValueError\nValueError\nValueError\n"
      "ValueError\nTypeError\n"
      "ValueError: hp.Size(3) is not a kind of hp.Type (compared with "
      "'=='): sokind and refdby take kinds of their base classifier\n"
      "ValueError: alt('<'): hp.Module(name='kmods') has no order\n");
}

}  // namespace
}  // namespace annex
