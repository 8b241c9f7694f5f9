# embed_bytes.cmake - eg_embed_bytes(FILE VAR): the bytes of FILE as the
# body of a C array initialiser, "0x2d,0x2d,...,0x00" (16 bytes a line, a
# NUL added), in VAR. Bytes, not a string literal: no escaping (quotes,
# backslashes, trigraphs) can go wrong, and no compiler limit on literal
# length applies. Used by embed_sql.cmake and embed_web.cmake.
function(eg_embed_bytes file var)
  file(READ ${file} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  # CMake regexes have no {n}: spell out 16 bytes per line.
  string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
  string(REGEX REPLACE "(${line})" "\\1\n  " hex "${hex}")
  set(${var} "${hex}0x00" PARENT_SCOPE)
endfunction()
