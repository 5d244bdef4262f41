# SPDX-License-Identifier: Apache-2.0
# cmake -DGO_MD2MAN=... -DINPUT=docs/etcd-x.md -DOUTPUT=etcd-x.8 -DVERSION=0.1.0 -P GenerateManPage.cmake
#
# The man page sources are Markdown that must stay readable on GitHub, so their first line is the
# plain heading "# etcd-x(8)". go-md2man turns the first level-1 heading into the .TH line; here it
# becomes "name 8 date source manual" so that man(1), mandb and lintian see section 8. The date is
# SOURCE_DATE_EPOCH's when set (dpkg-buildpackage sets it from debian/changelog): reproducible.
file(READ "${INPUT}" text)
string(REGEX MATCH "^# ([a-z0-9-]+)\\(8\\)\n" title "${text}")
if(NOT title)
  message(FATAL_ERROR "${INPUT}: the first line must be '# NAME(8)'")
endif()
set(name "${CMAKE_MATCH_1}")
string(TIMESTAMP date "%Y-%m-%d" UTC)
string(REGEX REPLACE "^# [a-z0-9-]+\\(8\\)\n"
       "# ${name} 8 \"${date}\" \"etcd-hsm-signer ${VERSION}\" \"System Manager's Manual\"\n" text "${text}")
file(WRITE "${OUTPUT}.md" "${text}")
execute_process(COMMAND "${GO_MD2MAN}" -in "${OUTPUT}.md" -out "${OUTPUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "go-md2man failed on ${INPUT} (${rc})")
endif()
file(REMOVE "${OUTPUT}.md")
