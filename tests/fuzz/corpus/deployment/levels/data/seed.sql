CREATE TABLE regions (code VARCHAR(16) PRIMARY KEY, name VARCHAR(100) NOT NULL, level VARCHAR(10) NOT NULL, village_type VARCHAR(12), parent_code VARCHAR(16), bps_code VARCHAR(10));
INSERT INTO regions VALUES
  ('35.03', 'Kabupaten Trenggalek', 'REGENCY', NULL, NULL, '3503'),
  ('35.03.07', 'Kampak', 'DISTRICT', NULL, '35.03', '3503040'),
  ('35.03.11', 'Trenggalek', 'DISTRICT', NULL, '35.03', '3503110'),
  ('35.03.07.2001', 'Ngadimulyo', 'VILLAGE', 'DESA', '35.03.07', NULL),
  ('35.03.07.2002', 'Bogoran', 'VILLAGE', 'DESA', '35.03.07', NULL),
  ('35.03.11.1002', 'Tamanan', 'VILLAGE', 'KELURAHAN', '35.03.11', NULL),
  ('35.03.11.2001', 'Ngares', 'VILLAGE', 'DESA', '35.03.11', NULL);
CREATE TABLE households (village_code VARCHAR(16) PRIMARY KEY, households INTEGER, is_coastal INTEGER);
INSERT INTO households VALUES ('35.03.07.2001', 812, 0), ('35.03.11.1002', 2310, 0), ('35.03.11.2001', 1005, 1);
