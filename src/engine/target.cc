#include "engine/target.h"

#include <sys/utsname.h>

namespace kiln::engine {

Target host_cpu_target() {
  struct utsname name {};
  ::uname(&name);
  return Target{"cpu", name.machine};
}

}  // namespace kiln::engine
