-- What compiling each component version cost: wall time (microseconds) and the
-- compile worker's peak resident memory (bytes). NULL for versions uploaded before
-- compiles were measured, and for peak memory of in-process compiles.
ALTER TABLE component_versions ADD COLUMN compile_time_us INTEGER;
ALTER TABLE component_versions ADD COLUMN compile_peak_memory_bytes INTEGER;
