# Compiled documentation: every ```cpp block of the given Markdown files becomes one executable
# and one ctest test (label `docs`) that runs it, so a snippet that stops compiling or stops
# being true fails the test suite. The convention (docs/README.md, "Snippets"):
#
#   ```cpp            a complete program: written out as it stands; main() returns non-zero when
#                     a check fails.
#   ```cpp fragment   the body of main(): compiled after #include <gmk/gmk.hpp> and the standard
#                     headers listed in _gmk_fragment_prologue below; it returns non-zero when a
#                     check fails (falling off the end returns 0).
#
# Any other word after `cpp` is an error, and so is an unterminated block, so a typo cannot
# silently take a snippet out of the suite. Fences must start in column 0; blocks in other
# languages (```sh, ```cmake, plain ```) are left alone. A #line directive points compiler
# errors at the Markdown file and line.
#
# Tests are named docs.<page>.<n>: <page> is the file's name without .md (README for the
# top-level README.md, index for docs/README.md), <n> counts its C++ blocks from 1.
#
#   gmk_add_doc_snippets(<aggregate target> <file.md>...)

set(_gmk_fragment_prologue [=[#include <gmk/gmk.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

int main() {
]=])

# The page name of a Markdown file (see above).
function(_gmk_doc_page out md)
  file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${md}")
  if(rel STREQUAL "README.md")
    set(page "README")
  elseif(rel STREQUAL "docs/README.md")
    set(page "index")
  else()
    get_filename_component(page "${md}" NAME_WE)
  endif()
  string(MAKE_C_IDENTIFIER "${page}" page)
  set(${out} "${page}" PARENT_SCOPE)
endfunction()

# Writes `content` to `path` only when it differs, so a reconfigure rebuilds nothing unchanged.
function(_gmk_write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()

function(gmk_add_doc_snippets aggregate)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/doc_snippets")
  file(MAKE_DIRECTORY "${dir}")
  set(written "")
  set(targets "")
  foreach(md IN LISTS ARGN)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${md}")
    _gmk_doc_page(page "${md}")
    file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${md}")
    file(READ "${md}" text)
    # The text is handled as one string (never as a CMake list: C++ is full of ';' and '[').
    set(text "\n${text}")
    set(pos 0)
    set(count 0)
    while(TRUE)
      string(SUBSTRING "${text}" ${pos} -1 rest)
      string(FIND "${rest}" "\n```cpp" at)
      if(at EQUAL -1)
        break()
      endif()
      math(EXPR open "${pos} + ${at} + 1")  # the fence's first backtick
      string(SUBSTRING "${text}" 0 ${open} before)
      string(REGEX REPLACE "[^\n]" "" newlines "${before}")
      string(LENGTH "${newlines}" fence_line)  # 1-based line of the fence ("\n" was prepended)
      string(SUBSTRING "${text}" ${open} -1 from_fence)
      string(FIND "${from_fence}" "\n" eol)
      if(eol EQUAL -1)
        message(FATAL_ERROR "${md}:${fence_line}: unterminated ```cpp block")
      endif()
      math(EXPR info_length "${eol} - 6")
      string(SUBSTRING "${from_fence}" 6 ${info_length} info)
      string(STRIP "${info}" info)
      if(NOT info STREQUAL "" AND NOT info STREQUAL "fragment")
        message(FATAL_ERROR "${md}:${fence_line}: unknown ```cpp info string '${info}' "
                            "(a C++ block is a complete program, or `cpp fragment`: see docs/README.md)")
      endif()
      string(SUBSTRING "${from_fence}" ${eol} -1 tail)  # starts with the fence line's newline
      string(FIND "${tail}" "\n```" close)
      if(close LESS 1)
        message(FATAL_ERROR "${md}:${fence_line}: unterminated or empty ```cpp block")
      endif()
      string(SUBSTRING "${tail}" 1 ${close} body)  # the lines between the fences, newline-terminated
      math(EXPR pos "${open} + ${eol} + ${close} + 4")

      math(EXPR count "${count} + 1")
      math(EXPR first_line "${fence_line} + 1")
      set(name "gmk_doc_${page}_${count}")
      set(header "// Generated from ${rel} (C++ block ${count}, line ${fence_line}) by cmake/gmkDocSnippets.cmake.\n")
      if(info STREQUAL "fragment")
        set(source "${header}${_gmk_fragment_prologue}#line ${first_line} \"${md}\"\n${body}}\n")
      else()
        set(source "${header}#line ${first_line} \"${md}\"\n${body}")
      endif()
      _gmk_write_if_changed("${dir}/${name}.cpp" "${source}")
      list(APPEND written "${dir}/${name}.cpp")

      add_executable(${name} "${dir}/${name}.cpp")
      target_link_libraries(${name} PRIVATE gmk::gmk)
      gmk_project_flags(${name})
      add_test(NAME docs.${page}.${count} COMMAND ${name})
      set_tests_properties(docs.${page}.${count} PROPERTIES LABELS docs)
      list(APPEND targets ${name})
    endwhile()
  endforeach()
  # Sources of blocks that no longer exist.
  file(GLOB stale "${dir}/*.cpp")
  foreach(f IN LISTS stale)
    if(NOT f IN_LIST written)
      file(REMOVE "${f}")
    endif()
  endforeach()
  list(LENGTH targets total)
  add_custom_target(${aggregate} COMMENT "gmk: the ${total} compiled documentation snippets are built")
  if(targets)
    add_dependencies(${aggregate} ${targets})
  endif()
endfunction()
