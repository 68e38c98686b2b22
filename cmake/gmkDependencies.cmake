# Finds gmk's dependencies: Eigen >= 3.4 and xsimd >= 8.1. Shared by the build tree and the
# installed gmkConfig.cmake.
#
# The packages are found without a version argument: their version files accept only the same
# major version, which would reject a newer Eigen or xsimd than the minimum. The minimum is
# checked here instead.
include(CMakeFindDependencyMacro)

macro(_gmk_find_dependency name)
  if(_gmk_in_package_config)
    find_dependency(${name} CONFIG)
  else()
    find_package(${name} CONFIG REQUIRED)
  endif()
endmacro()

if(NOT TARGET Eigen3::Eigen)
  _gmk_find_dependency(Eigen3)
endif()
if(DEFINED Eigen3_VERSION AND Eigen3_VERSION VERSION_LESS 3.4)
  message(FATAL_ERROR "gmk needs Eigen 3.4 or newer; found ${Eigen3_VERSION} in ${Eigen3_DIR}")
endif()

if(NOT TARGET xsimd)
  _gmk_find_dependency(xsimd)
endif()
if(DEFINED xsimd_VERSION AND xsimd_VERSION VERSION_LESS 8.1)
  message(FATAL_ERROR "gmk needs xsimd 8.1 or newer; found ${xsimd_VERSION} in ${xsimd_DIR}")
endif()

# Debian 12's xsimd package links its target to `xtl` without finding xtl, so a consumer
# without the xtl target would link a nonexistent -lxtl. xsimd uses xtl only for optional
# complex-number interop, which gmk does not use: find xtl if it is installed, otherwise drop
# the dangling name.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_gmk_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_gmk_xsimd_links AND "xtl" IN_LIST _gmk_xsimd_links)
    find_package(xtl CONFIG QUIET)
    if(NOT TARGET xtl)
      list(REMOVE_ITEM _gmk_xsimd_links xtl)
      set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "${_gmk_xsimd_links}")
    endif()
  endif()
  unset(_gmk_xsimd_links)
endif()
