-- The kernels' instruction-set path from SQL: mmsa_isa(), mmsa_cpu_flags()
-- and the setting mmsa.isa.  Only what holds on every supported host is
-- here (every such CPU has AVX2 and FMA; AVX-512 is optional):
-- test/pgtap/cpu_functions.sql asks for avx512 where the CPU has it, and
-- compares the sentiments the paths give.
CREATE EXTENSION mmsa;

-- the path auto picks: avx512 where the CPU (and the OS) have AVX-512 F, BW
-- and VL, else avx-vnni where it has AVX-VNNI, else avx2
CREATE FUNCTION best_isa() RETURNS text LANGUAGE sql AS $$
SELECT CASE WHEN string_to_array(mmsa_cpu_flags(), ' ') @> ARRAY['avx512f', 'avx512bw', 'avx512vl']
             AND mmsa_cpu_flags() NOT LIKE '%not enabled%'
            THEN 'avx512'
            WHEN 'avx_vnni' = ANY (string_to_array(mmsa_cpu_flags(), ' ')) THEN 'avx-vnni'
            ELSE 'avx2' END
$$;

-- the CPU has AVX2 and FMA; by default the best path runs
SELECT string_to_array(mmsa_cpu_flags(), ' ') @> ARRAY['avx', 'avx2', 'fma'] AS has_avx2_fma;
SELECT name, setting, boot_val, vartype, context FROM pg_settings WHERE name = 'mmsa.isa';
SELECT mmsa_isa() IN ('avx2', 'avx-vnni', 'avx512') AS known_path, mmsa_isa() = best_isa() AS best_path;

-- avx2 exists everywhere; the path changes for the next query
SET mmsa.isa = 'avx2';
SHOW mmsa.isa;
SELECT mmsa_isa();
RESET mmsa.isa;
SELECT mmsa_isa() = best_isa() AS best_again;

-- SET LOCAL ends with its transaction, and so does the path
BEGIN;
SET LOCAL mmsa.isa = 'avx2';
SELECT mmsa_isa();
ROLLBACK;
SELECT mmsa_isa() = best_isa() AS restored;

-- every path gives the same embedding (here the test model's small BERT)
CREATE TABLE isa_embeddings AS SELECT mmsa_text_embedding('Best. Concert. EVER!!!') AS under_auto;
SET mmsa.isa = 'avx2';
SELECT mmsa_text_embedding('Best. Concert. EVER!!!') = under_auto AS same_under_avx2 FROM isa_embeddings;
RESET mmsa.isa;

-- any user may set it
CREATE ROLE regress_mmsa_isa_user;
SET ROLE regress_mmsa_isa_user;
SET mmsa.isa = 'avx2';
SELECT mmsa_isa();
RESET mmsa.isa;
RESET ROLE;
DROP ROLE regress_mmsa_isa_user;

-- unknown names are refused (22023) and leave the path as it was; the
-- emulated path of test builds is not one of the extension's
SET mmsa.isa = 'avx2';
SET mmsa.isa = 'bogus';
SET mmsa.isa = '';
SET mmsa.isa = 'avx512-simde';
\set VERBOSITY sqlstate
SET mmsa.isa = 'sse4';
\set VERBOSITY default
SHOW mmsa.isa;
SELECT mmsa_isa();
RESET mmsa.isa;

DROP TABLE isa_embeddings;
DROP FUNCTION best_isa();
DROP EXTENSION mmsa;
