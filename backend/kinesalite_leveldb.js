// Preloaded into the local Kinesis emulator (backend/emulator.py runs `node --require` this
// file before kinesalite's cli.js): LevelDB keeps at most MAX_OPEN_FILES table files open.
//
// kinesalite opens its store with no options (kinesalite/db/index.js:
// `levelup(require('leveldown')(options.path))`), so LevelDB's default applies: up to 1,000
// open table files (leveldown's README, `maxOpenFiles`). Each open table keeps its index
// block in memory, about 55 KB per 2 MB file, and kinesalite deletes a record only when a
// read passes it after its 24-hour retention. So at 2,000 events/s (about 3 GB an hour) the
// emulator's C heap grew until 1,000 files were open: measured with leveldown 5.6 alone,
// writing 3.2 GB of kinesalite-like records, anonymous memory went 61 -> 118 MB by the
// 1,000th file and then stayed; with 100 files it stayed at 67-71 MB and wrote as fast.
// Readers follow the stream's tail, and a compaction touches a few dozen files at most.
'use strict'

const path = require('path')

const MAX_OPEN_FILES = 100

// The leveldown kinesalite itself loads (beside the script node runs), else the checkout's.
const where = [path.dirname(process.argv[1] || __filename), __dirname]
const LevelDOWN = require(require.resolve('leveldown', { paths: where }))
const open = LevelDOWN.prototype._open

LevelDOWN.prototype._open = function (options, callback) {
  return open.call(this, Object.assign({}, options, { maxOpenFiles: MAX_OPEN_FILES }), callback)
}

module.exports = { MAX_OPEN_FILES }
