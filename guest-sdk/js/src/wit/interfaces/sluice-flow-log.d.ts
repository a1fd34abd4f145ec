/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/log@0.1.0' {
  /**
   * Writes one log line. `fields` is an optional JSON object of structured fields.
   */
  export function write(level: Level, message: string, fields: Json | undefined): void;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
