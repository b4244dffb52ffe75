#include <iostream>

int main() {
  std::cout << "attnmap " << ATTNMAP_VERSION << "\n";
  return 0;
}
