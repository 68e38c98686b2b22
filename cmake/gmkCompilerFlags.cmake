# Warning and architecture flags for gmk's own tests, benchmarks and examples. The library
# target itself imposes no flags on its users.

# gmk_project_flags(<target>): warnings (as errors with GMK_WARNINGS_AS_ERRORS) and the
# architecture flags of GMK_ARCH_FLAGS.
function(gmk_project_flags target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(GMK_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(GMK_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  endif()
  if(GMK_ARCH_FLAGS)
    separate_arguments(_gmk_arch NATIVE_COMMAND "${GMK_ARCH_FLAGS}")
    target_compile_options(${target} PRIVATE ${_gmk_arch})
  endif()
endfunction()
