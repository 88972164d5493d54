"""The class's atomic updates, as Lua: each checks that the class (and the learner's seat) still exists first.

A learner's click may arrive just after the instructor ended the class, or after it expired. Redis runs
a script without interleaving anything else, so "is the class still there?" and "count this answer"
cannot be split by an ending: a write for a class that is gone writes nothing and answers ``0`` (the
learner's cached seat is then forgotten). Every key a script writes gets the class's expiry, so no
write can outlive the class.

Every feed script takes the same first keys and arguments:
KEYS ``meta, members, ver, m:<n>, d:<n>``; ARGV ``sandbox id, n, now``.
"""

from __future__ import annotations

from source.learning.classroom.store import Script

#: The learner's class and seat still exist (else return 0); ``exp`` is the class's expiry.
_SEATED = """
local exp = redis.call('HGET', KEYS[1], 'expires')
if not exp then return 0 end
local seat = redis.call('HGET', KEYS[2], ARGV[1])
if (not seat) or string.sub(seat, 1, #ARGV[2] + 1) ~= (ARGV[2] .. '|') then return 0 end
"""
#: Every write moves the class's version on, so the dashboard knows to read again.
_CHANGED = """
redis.call('INCR', KEYS[3])
redis.call('EXPIREAT', KEYS[3], exp)
return 1
"""

#: KEYS meta, index, ver. ARGV code, name, now, expires, cap, max classes, index ttl.
CREATE = Script(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'taken' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return 'full' end
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'name', ARGV[2], 'created', ARGV[3], 'expires', ARGV[4],
  'cap', ARGV[5], 'seq', 0)
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('SET', KEYS[3], 0, 'EXAT', ARGV[4])
return 'created'
"""
)

#: KEYS meta, members, ver, seat. ARGV sandbox id, display name, now, code.
#: Returns {'joined'|'again', n, name, expires} or {'gone'} or {'full', cap}.
JOIN = Script(
    """
local exp = redis.call('HGET', KEYS[1], 'expires')
if (not exp) or tonumber(exp) <= tonumber(ARGV[3]) then return {'gone'} end
local name = redis.call('HGET', KEYS[1], 'name')
local had = redis.call('HGET', KEYS[2], ARGV[1])
local outcome, n
if had then
  n = tonumber(string.match(had, '^(%d+)|'))
  local joined = string.match(had, '^%d+|([^|]*)|')
  redis.call('HSET', KEYS[2], ARGV[1], n .. '|' .. joined .. '|' .. ARGV[2])
  outcome = 'again'
else
  local cap = tonumber(redis.call('HGET', KEYS[1], 'cap'))
  if redis.call('HLEN', KEYS[2]) >= cap then return {'full', cap} end
  n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('HSET', KEYS[2], ARGV[1], n .. '|' .. ARGV[3] .. '|' .. ARGV[2])
  outcome = 'joined'
end
redis.call('EXPIREAT', KEYS[2], exp)
redis.call('SET', KEYS[4], ARGV[4], 'EXAT', exp)
redis.call('INCR', KEYS[3])
redis.call('EXPIREAT', KEYS[3], exp)
return {outcome, n, name, exp}
"""
)

#: KEYS meta, members, ver, seat, m:<n>, d:<n>, last:<lab>... ARGV sandbox id, n, code.
LEAVE = Script(
    """
local seat = redis.call('HGET', KEYS[2], ARGV[1])
local left = 0
if seat and string.sub(seat, 1, #ARGV[2] + 1) == (ARGV[2] .. '|') then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[5], KEYS[6])
  for i = 7, #KEYS do redis.call('HDEL', KEYS[i], ARGV[2]) end
  left = 1
end
if redis.call('GET', KEYS[4]) == ARGV[3] then redis.call('DEL', KEYS[4]) end
local exp = redis.call('HGET', KEYS[1], 'expires')
if exp and left == 1 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIREAT', KEYS[3], exp)
end
return left
"""
)

#: KEYS the seats of a class's members. ARGV code. Deletes each seat that still names this class.
UNSEAT = Script(
    """
local gone = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); gone = gone + 1 end
end
return gone
"""
)

#: KEYS meta, members, ver, m, d. ARGV id, n, now, page, lab ('' for a page that is no lab).
VISIT = Script(
    _SEATED
    + """
redis.call('HSET', KEYS[4], 'at', ARGV[3], 'page', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], 'v:' .. ARGV[5], 1) end
redis.call('EXPIREAT', KEYS[4], exp)
"""
    + _CHANGED
)

#: KEYS meta, members, ver, m, d, q, w:<question>.
#: ARGV id, n, now, question, lab, kind (right, wrong, revealed, shown), wrong answer's label, max marks, max wrong.
ANSWER = Script(
    _SEATED
    + """
local m, d, q, w = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local question, lab, kind, label = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('HSET', m, 'at', ARGV[3])
redis.call('EXPIREAT', m, exp)
if redis.call('HLEN', d) < tonumber(ARGV[8]) then
  if kind ~= 'shown' and redis.call('HSETNX', d, 'a:' .. question, 1) == 1 then
    redis.call('HINCRBY', q, question .. '|answered', 1)
  end
  if kind == 'right' and redis.call('HEXISTS', d, 'r:' .. question) == 0
      and redis.call('HSETNX', d, 'p:' .. question, 1) == 1 then
    redis.call('HINCRBY', q, question .. '|right', 1)
    redis.call('HINCRBY', m, 'p:' .. lab, 1)
    redis.call('HSET', m, 'moved', ARGV[3])
  end
  if (kind == 'wrong' or kind == 'revealed') and label ~= ''
      and redis.call('HSETNX', d, 'w:' .. question .. ':' .. label, 1) == 1 then
    local count = tonumber(redis.call('ZINCRBY', w, 1, label))
    if count > tonumber(redis.call('HGET', q, question .. '|topn') or '0') then
      redis.call('HSET', q, question .. '|top', label, question .. '|topn', count)
    end
    if redis.call('ZCARD', w) > tonumber(ARGV[9]) then redis.call('ZREMRANGEBYRANK', w, 0, 0) end
    redis.call('EXPIREAT', w, exp)
  end
  if (kind == 'revealed' or kind == 'shown') and redis.call('HSETNX', d, 'r:' .. question, 1) == 1 then
    redis.call('HINCRBY', q, question .. '|shown', 1)
  end
  redis.call('EXPIREAT', d, exp)
  if redis.call('EXISTS', q) == 1 then redis.call('EXPIREAT', q, exp) end
end
"""
    + _CHANGED
)

#: KEYS meta, members, ver, m, d, runs:<lab>, last:<lab>, labs.
#: ARGV id, n, now, lab, the run (JSON), max runs kept, '1' if it completed the Create exercise.
MEASURE = Script(
    _SEATED
    + """
redis.call('LPUSH', KEYS[6], ARGV[5])
redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[6]) - 1)
redis.call('HSET', KEYS[7], ARGV[2], ARGV[5])
redis.call('SADD', KEYS[8], ARGV[4])
redis.call('HSET', KEYS[4], 'at', ARGV[3], 'moved', ARGV[3])
if ARGV[7] == '1' then redis.call('HSET', KEYS[4], 'create', 1) end
for i = 4, 8 do
  if i ~= 5 then redis.call('EXPIREAT', KEYS[i], exp) end
end
"""
    + _CHANGED
)
