#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Lua scripting against redis-server 7.0, RESP2 and RESP3: EVAL/EVALSHA and their `_RO`
//! forms, SCRIPT, the `redis` API, conversions both ways, the sandbox and its errors (each
//! error reply compared byte for byte, with the script's SHA1 and line).

mod common;

use common::diff::differential;

#[test]
fn eval_basics_and_conversions() {
    differential(|d| {
        d.script("eval basics");
        d.run(
            r##"
            EVAL "return 1" 0
            EVAL "return 3.99" 0
            EVAL "return -3.99" 0
            EVAL "return 'hello'" 0
            EVAL "return true" 0
            EVAL "return false" 0
            EVAL "return nil" 0
            EVAL "return {1, 2, {3, 'x'}, nil, 5}" 0
            EVAL "return {ok='fine'}" 0
            EVAL "return {err='My Error'}" 0
            EVAL "return {err='oops'}" 0
            EVAL "return redis.error_reply('My Error')" 0
            EVAL "return redis.error_reply('oops')" 0
            EVAL "return redis.error_reply('-oops')" 0
            EVAL "return redis.status_reply('DONE')" 0
            EVAL "return redis.status_reply(1)" 0
            EVAL "return redis.error_reply()" 0
            EVAL "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}" 2 a b c d
            EVAL "return ARGV" 0 x y z
            EVAL "return KEYS" 3 x y z
            EVAL "return 1" 1
            EVAL "return 1" -1
            EVAL "return 1" x
            EVAL "return 1" 99999999999999999999
            EVAL "return redis.sha1hex('')" 0
            EVAL "return redis.sha1hex('abc')" 0
            EVAL "return redis.sha1hex()" 0
            EVAL "return redis.REDIS_VERSION_NUM > 0" 0
            EVAL "return type(redis.REDIS_VERSION)" 0
            EVAL "return {1e15, 2^53, -0.5, 0.5}" 0
            EVAL "return {a=1, b=2}" 0
            EVAL "return {1, {}, {ok='x'}, {err='E y'}}" 0
            EVAL "return function() end" 0
            EVAL "return {double=1.5}" 0
            EVAL "return {map={a=1}}" 0
            EVAL "return {set={a=true}}" 0
            EVAL "return {big_number='123'}" 0
            EVAL "return {verbatim_string={format='txt', string='hi'}}" 0
            EVAL "return tostring(0.1)" 0
            EVAL "return tonumber('0x10')" 0
            EVAL "return string.format('%d %s %5.2f', 3, 'x', 1.5)" 0
            EVAL "return #'abc' .. string.rep('-', 3) .. string.upper('a')" 0
            EVAL "return table.concat({'a','b','c'}, ',')" 0
            EVAL "return math.floor(2.5) + math.max(1, 7)" 0
            EVAL "return select('#', 1, nil, 3)" 0
            EVAL "return {unpack({1, 2, 3})}" 0
            EVAL "return _VERSION" 0
            "##,
        );
        d.script("redis.call");
        d.run(
            r##"
            EVAL "return redis.call('set', KEYS[1], ARGV[1])" 1 k v
            EVAL "return redis.call('get', KEYS[1])" 1 k
            EVAL "return redis.call('get', 'nosuch')" 0
            EVAL "return redis.call('incr', 'n')" 0
            EVAL "return redis.call('incrbyfloat', 'f', 1.5)" 0
            EVAL "return redis.call('set', 'num', 3.0)" 0
            EVAL "return redis.call('get', 'num')" 0
            EVAL "return redis.call('set', 'num', 0.1)" 0
            EVAL "return redis.call('get', 'num')" 0
            EVAL "return redis.call('rpush', 'l', 'a', 'b', 'c')" 0
            EVAL "return redis.call('lrange', 'l', 0, -1)" 0
            EVAL "return redis.call('hset', 'h', 'f', 'v', 'g', 'w')" 0
            EVAL "return redis.call('hgetall', 'h')" 0
            EVAL "return redis.call('zadd', 'z', 1.5, 'a', 2, 'b')" 0
            EVAL "return redis.call('zrange', 'z', 0, -1, 'withscores')" 0
            EVAL "return redis.call('zscore', 'z', 'a')" 0
            EVAL "return redis.call('ping')" 0
            EVAL "return redis.call('type', 'l')" 0
            EVAL "return redis.call('exists', 'k', 'nosuch', 'l')" 0
            EVAL "return redis.call('incr', 'k')" 0
            EVAL "return redis.pcall('incr', 'k')" 0
            EVAL "local r = redis.pcall('incr', 'k'); return r.err" 0
            EVAL "return redis.call('nosuch')" 0
            EVAL "return redis.pcall('nosuch')" 0
            EVAL "return redis.call('get')" 0
            EVAL "return redis.call()" 0
            EVAL "return redis.call('get', {})" 0
            EVAL "return redis.call('blpop', 'l', 0)" 0
            EVAL "return redis.call('eval', 'return 1', 0)" 0
            EVAL "return redis.call('subscribe', 'ch')" 0
            EVAL "return redis.call('multi')" 0
            EVAL "return redis.call('lpush', 'k', 'x')" 0
            EVAL "return redis.call('hget', 'h', 'f') .. redis.call('get', 'k')" 0
            EVAL "redis.call('set', 'a', 1); redis.call('set', 'b', 2); return redis.call('mget', 'a', 'b')" 0
            EVAL "return redis.call('select', 1)" 0
            GET a
            EVAL "redis.call('select', 1); redis.call('set', 'in1', 'x'); return redis.call('get', 'in1')" 0
            GET in1
            SELECT 1
            GET in1
            SELECT 0
            EVAL "return redis.call('blmpop', 0, 1, 'nolist', 'left')" 0
            EVAL "return pcall(redis.call, 'nosuch')" 0
            EVAL "local ok, e = pcall(redis.call, 'nosuch'); return e" 0
            EVAL "local ok, e = pcall(error, {err='X y'}); return e" 0
            EVAL "local ok, e = pcall(error, 'plain'); return e" 0
            EVAL "return redis.call('get', true)" 0
            EVAL "return redis.call('get', nil)" 0
            EVAL "return redis.pcall('get', 'k', function() end)" 0
            EVAL "redis.call('set', 'num', 1e20); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', 1/3); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', -7); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', 2^63); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', -2^63); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', 0/0); return redis.call('get', 'num')" 0
            EVAL "redis.call('set', 'num', -1/0); return redis.call('get', 'num')" 0
            EVAL "return redis.pcall('hget', 'l', 'x')" 0
            EVAL "local r = redis.pcall('hget', 'l', 'x'); return type(r) .. r.err" 0
            XADD st 1-1 f v g w
            EVAL "return redis.call('xrange', 'st', '-', '+')" 0
            EVAL "return redis.call('xrange', 'st', '-', '+')[1][2][3]" 0
            "##,
        );
        // Table order follows the strings' hashes: Redis's Lua hashes every byte of a string
        // (stock Lua 5.1 samples a long one, vendor/lua-src/README.md), so pairs() and
        // cjson.encode order keys longer than 32 bytes as Redis does only with the same hash.
        d.script("long strings hash as in Redis's Lua");
        d.run(
            r##"
            EVAL "local t = {} for i = 1, 12 do t[string.rep('k', 40) .. i] = i end local out = {} for k, v in pairs(t) do out[#out + 1] = v end return out" 0
            EVAL "local t = {} for _, c in ipairs({'x', 'y', 'z', 'w'}) do t[string.rep('a', 40) .. c] = c end return cjson.encode(t)" 0
            EVAL "local t = {} for i = 1, 9 do t[i .. string.rep('b', 70) .. i] = i end return cjson.encode(t)" 0
            "##,
        );
        d.script("errors and the sandbox");
        d.run(
            r##"
            EVAL "return foo" 0
            EVAL "foo = 1" 0
            EVAL "error('boom')" 0
            EVAL "error({err='MY custom'})" 0
            EVAL "error()" 0
            EVAL "x" 0
            EVAL "return 1 +" 0
            EVAL "local t = nil; return t.x" 0
            EVAL "return os" 0
            EVAL "return io" 0
            EVAL "return debug" 0
            EVAL "return require" 0
            EVAL "return dofile" 0
            EVAL "return loadfile" 0
            EVAL "return print" 0
            EVAL "return module" 0
            EVAL "return package" 0
            EVAL "string.x = 1" 0
            EVAL "math.floor = nil" 0
            EVAL "redis.call = nil" 0
            EVAL "rawset(_G, 'x', 1)" 0
            EVAL "setmetatable(_G, nil)" 0
            EVAL "_G.x = 1" 0
            EVAL "return type(loadstring)" 0
            EVAL "local f = loadstring('return 7'); return f()" 0
            EVAL "return loadstring(string.dump(function() return 1 end))" 0
            EVAL "local function f(n) return 1 + f(n + 1) end; return f(1)" 0
            EVAL "return type(getfenv)" 0
            EVAL "return type(setfenv)" 0
            EVAL "return type(newproxy)" 0
            EVAL "local a = {} for k in pairs(_G) do a[#a+1] = k end table.sort(a) return a" 0
            EVAL "local a = {} for k in pairs(string) do a[#a+1] = k end table.sort(a) return a" 0
            EVAL "local a = {} for k in pairs(math) do a[#a+1] = k end table.sort(a) return a" 0
            EVAL "local a = {} for k in pairs(table) do a[#a+1] = k end table.sort(a) return a" 0
            EVAL "local a = {} for k in pairs(coroutine) do a[#a+1] = k end table.sort(a) return a" 0
            EVAL "return {math.random(), math.random(10), math.random(5, 7), math.random(100)}" 0
            EVAL "math.randomseed(42); return {math.random(1000), math.random(1000)}" 0
            EVAL "return math.random(0)" 0
            EVAL "return math.random(3, 1)" 0
            EVAL "return math.random('x')" 0
            EVAL "return math.random(1, 2, 3)" 0
            EVAL "return pcall(math.random, 0)" 0
            EVAL "local ok, e = pcall(math.random, 0); return e" 0
            EVAL "return type(coroutine.create)" 0
            EVAL "return {pcall(function() return 1, 2 end)}" 0
            EVAL "local a = {}; for k in pairs(string) do a[#a + 1] = k end; return #a > 10" 0
            EVAL "return redis.log(redis.LOG_WARNING, 'hello', 'from', 'a script')" 0
            EVAL "return redis.log()" 0
            EVAL "return redis.log('x', 'y')" 0
            EVAL "return redis.log(9, 'y')" 0
            EVAL "return redis.setresp(4)" 0
            EVAL "return redis.setresp()" 0
            EVAL "return redis.set_repl(redis.REPL_ALL)" 0
            EVAL "return redis.set_repl(99)" 0
            EVAL "return redis.replicate_commands()" 0
            EVAL "return redis.breakpoint()" 0
            EVAL "return redis.acl_check_cmd('get', 'k')" 0
            EVAL "return redis.acl_check_cmd('nosuch')" 0
            "##,
        );
        d.script("resp3 inside scripts");
        d.run(
            r##"
            HSET h f v
            SADD s m
            ZADD z 1.5 a
            EVAL "redis.setresp(3); return redis.call('hgetall', 'h')" 0
            EVAL "redis.setresp(3); local r = redis.call('hgetall', 'h'); return r.map.f" 0
            EVAL "redis.setresp(3); return redis.call('smembers', 's')" 0
            EVAL "redis.setresp(3); return redis.call('zscore', 'z', 'a')" 0
            EVAL "redis.setresp(3); local r = redis.call('zscore', 'z', 'a'); return type(r) .. r.double" 0
            EVAL "redis.setresp(3); return redis.call('get', 'nosuch')" 0
            EVAL "redis.setresp(3); return redis.call('get', 'nosuch') == nil" 0
            EVAL "redis.setresp(3); return true" 0
            EVAL "redis.setresp(3); return false" 0
            EVAL "redis.setresp(2); return redis.call('get', 'nosuch')" 0
            EVAL "redis.setresp(3); local r = redis.call('zrange', 'z', 0, -1, 'withscores'); return r[1][1] .. ':' .. r[1][2].double" 0
            EVAL "redis.setresp(3); local r = redis.call('smembers', 's'); return tostring(r.set.m)" 0
            EVAL "redis.setresp(3); local r = redis.call('info', 'server'); return {r.verbatim_string.format, type(r.verbatim_string.string)}" 0
            EVAL "redis.setresp(3); local r = redis.call('hgetall', 'nosuch'); return type(r.map) .. tostring(next(r.map))" 0
            EVAL "redis.setresp(3); return redis.pcall('hget', 's', 'x')" 0
            MSET a 1 c 3
            EVAL "redis.setresp(3); local t = redis.call('mget', 'a', 'missing', 'c'); return {#t, t[3]}" 0
            EVAL "redis.setresp(3); local r = redis.call('info', 'server'); local out = {} for k in pairs(r.verbatim_string) do out[#out + 1] = k end return out" 0
            HSET h20 f01 v f02 v f03 v f04 v f05 v f06 v f07 v f08 v f09 v f10 v f11 v f12 v f13 v f14 v f15 v f16 v f17 v f18 v f19 v f20 v
            EVAL "redis.setresp(3); local r = redis.call('hgetall', 'h20'); local out = {} for k in pairs(r.map) do out[#out + 1] = k end return out" 0
            EVAL "for i = 1, 100 do redis.call('rpush', 'big', i) end local r = redis.call('lrange', 'big', 0, -1) local out = {} for k in pairs(r) do out[#out + 1] = k end return out" 0
            EVAL "local out = {} for k in pairs(ARGV) do out[#out + 1] = k end return out" 0 a b c d e f g h i j k l m n o p q r
            EVAL "KEYS.x = 1; KEYS[9] = 2; KEYS[7] = 3; local out = {} for k in pairs(KEYS) do out[#out + 1] = tostring(k) end return {out, #KEYS}" 5 a b c d e
            EVAL "local r = redis.call('lrange', 'big', 0, 4); r.x = 1; r[9] = 2; r[7] = 3; local out = {} for k in pairs(r) do out[#out + 1] = tostring(k) end return {out, #r}" 0
            "##,
        );
        d.script("script commands");
        d.run(
            r##"
            SCRIPT LOAD "return 'loaded'"
            EVALSHA 0a1a4f5bdc3dc0ce23a4c47a1d8ff8b3c1e0b4e5 0
            EVALSHA fa3c8bc59bff8d4e53da9e0e8e0ae6d3dc85a0ee 0
            SCRIPT EXISTS 0a1a4f5bdc3dc0ce23a4c47a1d8ff8b3c1e0b4e5 nosuch
            EVALSHA short 0
            EVAL "return 'x'" 0
            SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db
            SCRIPT LOAD "return +"
            SCRIPT LOAD
            SCRIPT
            SCRIPT NOSUCH
            SCRIPT FLUSH
            SCRIPT FLUSH ASYNC
            SCRIPT FLUSH SYNC
            SCRIPT FLUSH NOW
            SCRIPT FLUSH SYNC x
            EVAL "return 'x'" 0
            SCRIPT FLUSH
            EVALSHA 573cd020e2fc941d149285df8b681959190edd09 0
            SCRIPT EXISTS 573cd020e2fc941d149285df8b681959190edd09
            EVAL "return 'x'" 0
            EVALSHA 573cd020e2fc941d149285df8b681959190edd09 0
            SCRIPT EXISTS 573cd020e2fc941d149285df8b681959190edd09
            SCRIPT KILL
            SCRIPT KILL x
            SCRIPT EXISTS
            SCRIPT HELP
            SCRIPT DEBUG NO
            SCRIPT DEBUG MAYBE
            EVAL
            EVALSHA x
            "##,
        );
        d.script("read-only scripts and shebangs");
        d.run(
            r##"
            SET k v
            EVAL_RO "return redis.call('get', 'k')" 1 k
            EVAL_RO "return redis.call('set', 'k', 'w')" 1 k
            EVAL "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'w')" 1 k
            EVAL "#!lua\nreturn redis.call('set', 'k', 'w')" 1 k
            EVAL_RO "#!lua\nreturn 1" 0
            EVAL_RO "#!lua flags=no-writes\nreturn redis.call('get', 'k')" 1 k
            EVAL "#!lua flags=bogus\nreturn 1" 0
            EVAL "#!lua foo=bar\nreturn 1" 0
            EVAL "#!python\nreturn 1" 0
            EVAL "#!lua" 0
            EVAL "#!lua flags=no-writes,allow-oom\nreturn 2" 0
            EVAL "#!lua\nerror('on line two')" 0
            EVAL "local x = 1\nlocal y = 2\nerror('line three')" 0
            "##,
        );
    });
}

#[test]
fn functions_like_redis() {
    differential(|d| {
        d.script("function load and fcall");
        d.run(
            r##"
            FUNCTION LOAD "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return redis.call('get', keys[1]) end)"
            SET k v
            FCALL f1 1 k
            FCALL f1 0
            FCALL_RO f1 1 k
            FCALL nosuch 0
            FCALL f1 x
            FCALL f1 -1
            FCALL f1 3 a
            FUNCTION LOAD "#!lua name=mylib\nredis.register_function('f1', function() return 1 end)"
            FUNCTION LOAD REPLACE "#!lua name=mylib\nredis.register_function{function_name='f1', callback=function(k, a) return {k[1], a[1]} end, flags={'no-writes'}, description='one'}"
            FCALL f1 1 key arg
            FCALL_RO f1 1 key arg
            FUNCTION LIST
            FUNCTION LIST WITHCODE
            FUNCTION LIST LIBRARYNAME my*
            FUNCTION LIST LIBRARYNAME nomatch*
            FUNCTION LIST LIBRARYNAME
            FUNCTION LIST BOGUS
            FUNCTION STATS
            FUNCTION LOAD "#!lua name=other\nredis.register_function('f1', function() return 1 end)"
            FUNCTION LOAD "#!lua name=bad\nreturn 1"
            FUNCTION LOAD "#!lua name=bad\nredis.call('ping')"
            FUNCTION LOAD "#!lua name=bad\nx ="
            FUNCTION LOAD "#!lua name=bad\nlocal x = foo"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function('a-b', function() end)"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function('a')"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function{function_name='a'}"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function{callback=function() end}"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function{function_name='a', callback=function() end, flags={'bogus'}}"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function{function_name='a', callback=function() end, foo=1}"
            FUNCTION LOAD "#!lua name=bad\nredis.register_function(1, 2, 3)"
            FUNCTION LOAD "return 1"
            FUNCTION LOAD "#!lua\nreturn 1"
            FUNCTION LOAD "#!js name=x\nreturn 1"
            FUNCTION LOAD "#!lua name=a-b\nreturn 1"
            FUNCTION LOAD "#!lua name=x name=y\nreturn 1"
            FUNCTION LOAD "#!lua name=x foo=y\nreturn 1"
            FUNCTION LOAD
            FUNCTION LOAD BOGUS "#!lua name=x\nreturn 1"
            FUNCTION LOAD REPLACE
            EVAL "return redis.register_function" 0
            FUNCTION DELETE nosuch
            FUNCTION DELETE mylib
            FCALL f1 0
            FUNCTION LOAD "#!lua name=w\nredis.register_function('w', function(keys, args) redis.call('set', keys[1], args[1]); return redis.call('get', keys[1]) end)"
            FCALL w 1 wk wv
            FCALL_RO w 1 wk wv
            GET wk
            FUNCTION LOAD "#!lua name=e\nredis.register_function('e', function() error('boom') end)\nredis.register_function('e2', function() return redis.call('nosuch') end)"
            FCALL e 0
            FCALL e2 0
            FUNCTION FLUSH
            FUNCTION LIST
            FUNCTION FLUSH BOGUS
            FUNCTION FLUSH ASYNC
            FUNCTION KILL
            FUNCTION HELP
            FUNCTION NOSUCH
            "##,
        );
        d.script("function dump and restore");
        d.run(
            r##"
            FUNCTION LOAD "#!lua name=lib1\nredis.register_function('g1', function() return 'one' end)"
            FUNCTION RESTORE bogus
            FUNCTION RESTORE "" FLUSH
            FUNCTION RESTORE x BOGUS
            FUNCTION DELETE lib1
            "##,
        );
    });
}
