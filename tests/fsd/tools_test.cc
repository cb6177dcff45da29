// Ordinary tools on a real cairn-fsd mount: cp, cp -r, mv, cat, tar c/x,
// rsync -a, find, grep -r, jq, sort, wc, an editor-style save (temp file,
// fsync, rename over), a reader while a writer has the file open, and many
// processes writing at once (different files, and one file: last close
// wins, never a torn document). One cluster and one mount for the suite.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "tests/common/test_seeds.h"
#include "tests/fsd/fsd_harness.h"
#include "tests/integration/integration_util.h"

namespace cairn::test {
namespace {

class FsdTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    quiet_ = new QuietLogs();
    ClusterOptions o;
    o.chunk_servers = 2;
    o.partitions = 8;
    auto c = Cluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = c->release();
    auto m = FsdMount::Start(*cluster_, {"timeout=20"});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mount_ = m->release();
    work_ = new TempDir("cairn-fsd-tools");
  }
  static void TearDownTestSuite() {
    delete mount_;
    delete cluster_;
    delete work_;
    delete quiet_;
  }
  void TearDown() override {
    if (HasFailure() && mount_ != nullptr) ADD_FAILURE() << "fsd log:\n" << mount_->Log();
  }

  // Runs a bash script with M=<mount> and W=<local scratch dir>; returns
  // its output and expects exit code 0.
  static std::string Sh(const std::string& script, int expect = 0) {
    auto r = RunCommand({"/bin/bash", "-c", "set -euo pipefail\n" + script},
                        std::chrono::seconds(50), {"M=" + mount_->path(), "W=" + work_->path()});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, expect) << script << "\n---\n" << r->output;
    return r->output;
  }

  static QuietLogs* quiet_;
  static Cluster* cluster_;
  static FsdMount* mount_;
  static TempDir* work_;
};
QuietLogs* FsdTools::quiet_ = nullptr;
Cluster* FsdTools::cluster_ = nullptr;
FsdMount* FsdTools::mount_ = nullptr;
TempDir* FsdTools::work_ = nullptr;

TEST_F(FsdTools, CpCatMvFindGrepSortWc) {
  Sh(R"SH(
    mkdir $M/tools
    printf 'b\na\nc\n' > $W/lines.txt
    cp $W/lines.txt $M/tools/lines.txt
    cmp $W/lines.txt $M/tools/lines.txt
    [ "$(cat $M/tools/lines.txt | sort | tr -d '\n')" = abc ]
    [ "$(wc -l < $M/tools/lines.txt)" = 3 ]
    mv $M/tools/lines.txt $M/tools/renamed.txt
    [ ! -e $M/tools/lines.txt ]
    grep -q '^c$' $M/tools/renamed.txt
    [ "$(find $M/tools -type f -name 'renamed*' | wc -l)" = 1 ]
    sort $M/tools/renamed.txt > $M/tools/sorted.txt
    [ "$(head -1 $M/tools/sorted.txt)" = a ]
  )SH");
}

TEST_F(FsdTools, CpRecursiveTarRsyncGrepJq) {
  Sh(R"SH(
    mkdir -p $W/src
    for i in $(seq 1 40); do
      printf '{"n": %d, "name": "doc %d", "tags": ["t%d"]}\n' $i $i $((i % 3)) > $W/src/doc$i.json
    done
    head -c 3000000 /dev/urandom > $W/src/big.bin
    mkdir $M/cpr
    cp -r $W/src/. $M/cpr/
    diff -r $W/src $M/cpr -x .indexes -x .query
    [ "$(grep -rl '"t1"' $M/cpr | wc -l)" = 14 ]
    [ "$(jq -r .name $M/cpr/doc7.json)" = "doc 7" ]
    [ "$(cat $M/cpr/*.json | jq -s 'map(.n) | add')" = 820 ]
    # tar out of the mount and back into another collection
    tar -C $M/cpr -cf $W/out.tar --exclude=.indexes --exclude=.query .
    mkdir $M/untar
    tar -C $M/untar -xf $W/out.tar
    diff -r $W/src $M/untar -x .indexes -x .query
    # rsync -a, then again (nothing to do), then a change
    mkdir $M/rs
    rsync -a $W/src/ $M/rs/
    diff -r $W/src $M/rs -x .indexes -x .query
    echo '{"n": 0}' > $W/src/doc1.json
    rsync -a $W/src/ $M/rs/
    cmp $W/src/doc1.json $M/rs/doc1.json
    # mtimes were kept
    [ "$(stat -c %Y $W/src/doc5.json)" = "$(stat -c %Y $M/rs/doc5.json)" ]
    [ "$(find $M/rs -name '*.json' | wc -l)" = 40 ]
  )SH");
}

TEST_F(FsdTools, EditorSaveThroughTempFileAndRename) {
  Sh(R"SH(
    mkdir $M/edit
    echo 'version 1' > $M/edit/notes.txt
    # what editors do: a swap file, a temp file fsynced, renamed over
    echo swap > $M/edit/.notes.txt.swp
    python3 - "$M/edit" <<'PY'
import os, sys
d = sys.argv[1]
tmp = os.path.join(d, ".notes.txt.tmp")
with open(tmp, "w") as f:
    f.write("version 2\n")
    f.flush()
    os.fsync(f.fileno())
os.rename(tmp, os.path.join(d, "notes.txt"))
PY
    rm $M/edit/.notes.txt.swp
    [ "$(cat $M/edit/notes.txt)" = 'version 2' ]
    [ "$(ls -A $M/edit | grep -v '^\.indexes$' | grep -v '^\.query$')" = notes.txt ]
  )SH");
}

TEST_F(FsdTools, ReaderWhileWriterHasTheFileOpen) {
  Sh(R"SH(
    mkdir $M/rw
    echo old > $M/rw/f
    exec 3>$M/rw/f        # open for writing (truncating), not closed yet
    echo new >&3
    [ "$(cat $M/rw/f)" = old ] || [ "$(cat $M/rw/f)" = new ] || [ -z "$(cat $M/rw/f)" ]
    exec 3>&-             # close: committed
    [ "$(cat $M/rw/f)" = new ]
  )SH");
}

TEST_F(FsdTools, ManyWritersDifferentFilesAndOneFile) {
  Sh(R"SH(
    mkdir $M/conc
    for i in $(seq 1 16); do
      ( head -c $((100000 + i * 1000)) /dev/zero | tr '\0' "$(printf \\$(printf '%03o' $((64 + i))))" > $M/conc/f$i ) &
    done
    wait
    for i in $(seq 1 16); do
      [ "$(stat -c %s $M/conc/f$i)" = $((100000 + i * 1000)) ]
      [ "$(tr -d "$(printf \\$(printf '%03o' $((64 + i))))" < $M/conc/f$i | wc -c)" = 0 ]
    done
    # 12 writers of one file, each a distinct 1.5 MB body: the result is
    # exactly one of them.
    for i in $(seq 1 12); do
      ( head -c 1500000 /dev/zero | tr '\0' "$(printf \\$(printf '%03o' $((64 + i))))" > $M/conc/same ) &
    done
    wait
    [ "$(stat -c %s $M/conc/same)" = 1500000 ]
    [ "$(fold -w1 < $M/conc/same | sort -u | wc -l)" = 1 ]
  )SH");
}

}  // namespace
}  // namespace cairn::test
