# Included by scripts/build_rosidl_package.sh right before rosidl_generate_interfaces() of an
# interface package built into a venv that holds ROS 2 Jazzy from the PyPI wheels.
# The wheels' imported *__rosidl_generator_py targets keep the include folders of the machine
# that built them (/opt/python/...): swap those for this interpreter's Python and NumPy headers.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)
get_property(_dcreg_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_dcreg_target IN LISTS _dcreg_imported)
  get_target_property(_dcreg_includes ${_dcreg_target} INTERFACE_INCLUDE_DIRECTORIES)
  if(_dcreg_includes AND "${_dcreg_includes}" MATCHES "/opt/python/")
    list(FILTER _dcreg_includes EXCLUDE REGEX "^/opt/python/")
    list(APPEND _dcreg_includes ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
    set_target_properties(${_dcreg_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dcreg_includes}")
  endif()
endforeach()
