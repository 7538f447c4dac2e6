// Python source that tests put in front of the code they run (in the annex
// or the target), so that a helper every test file needs is written once.
#pragma once

namespace annex::testing {

// Defines err(f), which calls f() and returns what it raised as
// "TypeName: message" ('no error' when it raised nothing), and
// err_type(f), the type's name alone. For tests of error messages:
// Exec(std::string(kErrPrelude) + "print(err(lambda: x.by(3)))\n").
inline constexpr char kErrPrelude[] =
    "def err(f):\n"
    "    try:\n"
    "        f()\n"
    "    except Exception as e:\n"
    "        return type(e).__name__ + ': ' + str(e)\n"
    "    return 'no error'\n"
    "def err_type(f):\n"
    "    return err(f).partition(':')[0]\n";

}  // namespace annex::testing
