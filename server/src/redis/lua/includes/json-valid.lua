--[[
  validJson(s) -> true | false, reason

  Checks, before a payload is stored, that the string `s` is exactly one JSON text a browser can
  take: stored payloads are later spliced into the JSON frames the scripts build by string
  concatenation and sent as WebSocket text frames, so anything else breaks every client reading them.

  Accepts exactly what ECMAScript's JSON.parse accepts as a whole text, restricted to valid UTF-8:
    * one JSON value (RFC 8259: object, array, string, number, true, false, null), optionally
      surrounded by space, \t, \n, \r only; nothing else before or after (no BOM, no second value);
    * numbers -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? of any magnitude (1e400 is valid JSON);
    * strings without raw U+0000..U+001F and with only the escapes \" \\ \/ \b \f \n \r \t \uXXXX
      (escaped lone surrogates such as "\ud800" are accepted, as JSON.parse does); duplicate keys too;
    * the whole text is valid UTF-8: no stray continuation bytes, overlong forms, truncated sequences,
      UTF-16 surrogates (U+D800..U+DFFF) or code points above U+10FFFF (a browser closes the
      WebSocket on a text frame with invalid UTF-8);
    * at most 512 nested arrays/objects (stricter than JSON.parse, on purpose).
  `reason` is short and names a 0-based byte offset, e.g. 'not JSON at byte 17', 'invalid UTF-8 at
  byte 3', 'nesting deeper than 512 at byte 512'. `s` must be a string (ARGV values always are).

  Iterative (an explicit stack of open containers, no recursion) and linear: runs of ordinary string
  characters, whitespace and digits are skipped by anchored string.find patterns, and only bytes
  >= 0x80 are decoded in Lua (four common 2- or 3-byte sequences at a time where possible).
  Lua 5.1 without globals (reads string.find/byte/sub only), so it can be pasted or --@include'd
  into an EVAL script or a FUNCTION library.
]]
local function validJson(s)
  local find, byte, sub = string.find, string.byte, string.sub
  local MAX_DEPTH = 512
  -- printable ASCII but " and \ (bytes 32, 33, 35..91, 93..126; a leading ] is literal in a set)
  local PLAIN = '^[]-~#-[ !]*'
  local PLAIN_STRING = '^[]-~#-[ !]*"'
  local WS = '^[ \t\n\r]*'
  local HEX4 = '^[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]'
  -- four 2-byte sequences; four 3-byte sequences with a lead whose second byte may be any 80..BF
  local UTF8_2X4 = '^[\194-\223][\128-\191][\194-\223][\128-\191][\194-\223][\128-\191][\194-\223][\128-\191]'
  local UTF8_3X4 =
    '^[\225-\236\238\239][\128-\191][\128-\191][\225-\236\238\239][\128-\191][\128-\191][\225-\236\238\239][\128-\191][\128-\191][\225-\236\238\239][\128-\191][\128-\191]'

  -- isObject[d]: the open container at depth d is an object (true) or an array (false)
  local isObject = {}
  local depth = 0
  local key = false -- the next token must be an object key (after '{' or after ',' in an object)
  local ended -- a value has just ended at i - 1
  local i = 1
  -- at the top of the loop c == byte(s, i); after a value c, d == byte(s, i, i + 1)
  local c, d, e, _ = byte(s, 1)

  while true do
    if c == 32 or c == 9 or c == 10 or c == 13 then
      _, e = find(s, WS, i)
      i = e + 1
      c = byte(s, i)
    end

    if c == 34 then -- a string: a value, or an object key
      -- the common case in one call: plain characters up to the closing quote
      _, e = find(s, PLAIN_STRING, i + 1)
      if not e then
        local j = i + 1
        c, d = byte(s, j, j + 1)
        while c ~= 34 do
          if c == nil then
            return false, 'unterminated string at byte ' .. (i - 1)
          elseif c >= 0x80 then
            -- a run of non-ASCII: well-formed UTF-8 sequences only (RFC 3629, section 4); when the
            -- next sequence has the same common form, four of them are checked by one pattern
            repeat
              if c >= 0xC2 and c <= 0xDF then
                if d == nil or d < 0x80 or d > 0xBF then
                  return false, 'invalid UTF-8 at byte ' .. (j - 1)
                end
                local n = byte(s, j + 2) -- the lead of the next sequence
                j = j + 2
                if n ~= nil and n >= 0xC2 and n <= 0xDF then
                  _, e = find(s, UTF8_2X4, j)
                  if e then
                    j = e + 1
                  end
                end
              elseif c >= 0xE0 and c <= 0xEF then
                local b3, n = byte(s, j + 2, j + 3) -- n: the lead of the next sequence
                local lo, hi = 0x80, 0xBF
                if c == 0xE0 then
                  lo = 0xA0 -- no overlong form
                elseif c == 0xED then
                  hi = 0x9F -- no UTF-16 surrogate
                end
                if b3 == nil or d < lo or d > hi or b3 < 0x80 or b3 > 0xBF then
                  return false, 'invalid UTF-8 at byte ' .. (j - 1)
                end
                j = j + 3
                if n ~= nil and n >= 0xE1 and n <= 0xEF and n ~= 0xED then
                  _, e = find(s, UTF8_3X4, j)
                  if e then
                    j = e + 1
                  end
                end
              elseif c >= 0xF0 and c <= 0xF4 then
                local b3, b4 = byte(s, j + 2, j + 3)
                local lo, hi = 0x80, 0xBF
                if c == 0xF0 then
                  lo = 0x90 -- no overlong form
                elseif c == 0xF4 then
                  hi = 0x8F -- nothing above U+10FFFF
                end
                if b4 == nil or d < lo or d > hi or b3 < 0x80 or b3 > 0xBF or b4 < 0x80 or b4 > 0xBF then
                  return false, 'invalid UTF-8 at byte ' .. (j - 1)
                end
                j = j + 4
              else -- a continuation byte without its lead, C0/C1 (overlong) or F5..FF
                return false, 'invalid UTF-8 at byte ' .. (j - 1)
              end
              c, d = byte(s, j, j + 1)
            until c == nil or c < 0x80
          elseif c == 92 then -- \
            if d == 34 or d == 92 or d == 47 or d == 98 or d == 102 or d == 110 or d == 114 or d == 116 then
              j = j + 2
            elseif d == 117 and find(s, HEX4, j + 2) then -- \uXXXX
              j = j + 6
            else
              return false, 'bad escape at byte ' .. (j - 1)
            end
            c, d = byte(s, j, j + 1)
          elseif c >= 32 then -- a plain character or DEL (not a control character for JSON), then plain ones
            _, e = find(s, PLAIN, j + 1)
            j = e + 1
            c, d = byte(s, j, j + 1)
          else
            return false, 'control character in string at byte ' .. (j - 1)
          end
        end
        e = j
      end
      i = e + 1
      c, d = byte(s, i, i + 1)
      if key then
        if c == 32 or c == 9 or c == 10 or c == 13 then
          _, e = find(s, WS, i)
          i = e + 1
          c, d = byte(s, i, i + 1)
        end
        if c ~= 58 then -- :
          return false, 'expected : at byte ' .. (i - 1)
        end
        i = i + 1
        c = d
        key = false
        ended = false
      else
        ended = true
      end
    elseif key then
      if c == nil then
        return false, 'unexpected end at byte ' .. (i - 1)
      end
      return false, 'expected object key at byte ' .. (i - 1)
    elseif c == 45 or (c ~= nil and c >= 48 and c <= 57) then -- - or a digit: a number
      _, e = find(s, '^-?[0-9]+', i)
      if not e then
        return false, 'bad number at byte ' .. (i - 1)
      end
      -- no leading zero: 0 or [1-9][0-9]*
      if c == 45 then
        if byte(s, i + 1) == 48 and e > i + 1 then
          return false, 'bad number at byte ' .. (i - 1)
        end
      elseif c == 48 and e > i then
        return false, 'bad number at byte ' .. (i - 1)
      end
      c, d = byte(s, e + 1, e + 2)
      if c == 46 then -- .
        _, e = find(s, '^[0-9]+', e + 2)
        if not e then
          return false, 'bad number at byte ' .. (i - 1)
        end
        c, d = byte(s, e + 1, e + 2)
      end
      if c == 101 or c == 69 then -- e E
        _, e = find(s, '^[+-]?[0-9]+', e + 2)
        if not e then
          return false, 'bad number at byte ' .. (i - 1)
        end
        c, d = byte(s, e + 1, e + 2)
      end
      i = e + 1
      ended = true
    elseif c == 123 or c == 91 then -- { or [
      if depth >= MAX_DEPTH then
        return false, 'nesting deeper than ' .. MAX_DEPTH .. ' at byte ' .. (i - 1)
      end
      local open = c
      i = i + 1
      c, d = byte(s, i, i + 1)
      if c == 32 or c == 9 or c == 10 or c == 13 then
        _, e = find(s, WS, i)
        i = e + 1
        c, d = byte(s, i, i + 1)
      end
      if (open == 123 and c == 125) or (open == 91 and c == 93) then -- {} or []
        i = i + 1
        c, d = byte(s, i, i + 1)
        ended = true
      else
        depth = depth + 1
        isObject[depth] = open == 123
        key = open == 123
        ended = false
      end
    elseif c == 116 and sub(s, i, i + 3) == 'true' then
      i = i + 4
      c, d = byte(s, i, i + 1)
      ended = true
    elseif c == 102 and sub(s, i, i + 4) == 'false' then
      i = i + 5
      c, d = byte(s, i, i + 1)
      ended = true
    elseif c == 110 and sub(s, i, i + 3) == 'null' then
      i = i + 4
      c, d = byte(s, i, i + 1)
      ended = true
    elseif c == nil then
      if depth == 0 then
        return false, 'no JSON value'
      end
      return false, 'unexpected end at byte ' .. (i - 1)
    else
      return false, 'not JSON at byte ' .. (i - 1)
    end

    -- after a value: close containers until a ',' (then the next value or key) or the end
    while ended do
      if c == 32 or c == 9 or c == 10 or c == 13 then
        _, e = find(s, WS, i)
        i = e + 1
        c, d = byte(s, i, i + 1)
      end
      if depth == 0 then
        if c == nil then
          return true
        end
        return false, 'trailing data at byte ' .. (i - 1)
      elseif c == 44 then -- ,
        i = i + 1
        c = d
        key = isObject[depth]
        ended = false
      elseif (c == 93 and not isObject[depth]) or (c == 125 and isObject[depth]) then -- ] or }
        depth = depth - 1
        i = i + 1
        c, d = byte(s, i, i + 1)
      elseif c == nil then
        return false, 'unexpected end at byte ' .. (i - 1)
      else
        return false, 'not JSON at byte ' .. (i - 1)
      end
    end
  end
end
