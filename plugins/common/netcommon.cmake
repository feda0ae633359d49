# plugins/common/netcommon.cmake: chicane_use_netcommon(TARGET) compiles the code the network
# plugins share (plugins/common/net_*.c) into TARGET, hidden like the rest of the plugin.
function(chicane_use_netcommon target)
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  target_sources(${target} PRIVATE "${dir}/net_adam.c" "${dir}/net_blob.c" "${dir}/net_config.c"
                                   "${dir}/net_init.c" "${dir}/net_layers.c" "${dir}/net_plugin.c")
  target_include_directories(${target} PRIVATE "${dir}")
  # The activation and Adam loops only vectorise when the compiler may ignore floating-point
  # exception flags and errno (results are unchanged), and GCC's -O2 cost model is too timid
  # for loops of unknown length: together these double an MLP's forward pass.
  target_compile_options(${target} PRIVATE
    $<$<C_COMPILER_ID:GNU,Clang>:-fno-trapping-math -fno-math-errno>
    $<$<C_COMPILER_ID:GNU>:-fvect-cost-model=dynamic>)
endfunction()
