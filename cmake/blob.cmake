# add_blob(NAME SOURCES...): build a position-independent, -nostdlib blob
# (the parasite, the restorer) and embed it in a C file NAME-blob.c that
# defines `const unsigned char NAME_blob[]`, `NAME_blob_size` (bytes in the
# file image), `NAME_blob_mem_size` (bytes the blob needs mapped, .bss
# included, page aligned) and, for every global symbol called
# `NAME_export_X` (functions and labels the host jumps to), a constant
# `NAME_off_X` with its offset.  Nothing in a blob may need relocations: the
# build fails if the linked blob has any.
set(CKPT_BLOB_CFLAGS -O2 -fpie -nostdlib -ffreestanding -fno-builtin
    -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables
    -fcf-protection=none -mgeneral-regs-only -fvisibility=hidden
    -fno-jump-tables -Wall -Wextra -Werror -Wno-unused-parameter
    -mno-red-zone -D_GNU_SOURCE -DCKPT_BLOB)

function(add_blob name)
  set(elf ${name}-blob.elf)
  add_executable(${elf} ${ARGN})
  target_compile_options(${elf} PRIVATE ${CKPT_BLOB_CFLAGS})
  target_include_directories(${elf} PRIVATE ${CMAKE_SOURCE_DIR}/include)
  target_link_options(${elf} PRIVATE -nostdlib -static -Wl,--no-dynamic-linker
    -Wl,-T,${CMAKE_SOURCE_DIR}/cmake/blob.ld -Wl,--build-id=none -Wl,-z,noexecstack)
  set_target_properties(${elf} PROPERTIES LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/blob.ld)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}-blob.c)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DELF=$<TARGET_FILE:${elf}>
            -DOBJCOPY=${CMAKE_OBJCOPY} -DNM=${CMAKE_NM} -DREADELF=${CMAKE_READELF}
            -DOUT=${out} -P ${CMAKE_SOURCE_DIR}/cmake/embed-blob.cmake
    DEPENDS ${elf} ${CMAKE_SOURCE_DIR}/cmake/embed-blob.cmake VERBATIM)
  add_custom_target(${name}-blob-c DEPENDS ${out})
  set(${name}_BLOB_C ${out} PARENT_SCOPE)
endfunction()
