// The optional component: linked as kfac::runtime, its headers under kfac/runtime/.
#include <kfac/runtime/runtime_info.h>

#include <iostream>

int main() {
  const auto info = kfac::runtime::runtime_info();
  std::cout << "runtime component ok: " << info.cpu.logical_cores << " logical cores\n";
  return 0;
}
